import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { absoluteTime, relativeTime } from '../format.ts';

export function StatusBadge({ status }: { status: 'online' | 'offline' }) {
  return (
    <span class={`badge badge-${status}`}>
      <span class="dot" aria-hidden="true" />
      {status === 'online' ? 'Online' : 'Offline'}
    </span>
  );
}

export function LastSeen({ iso, now }: { iso: string | null; now: number }) {
  if (!iso) return <span>Never seen</span>;
  return (
    <span>
      Last seen{' '}
      <time dateTime={iso} title={absoluteTime(iso)}>
        {relativeTime(iso, now)}
      </time>
    </span>
  );
}

type Tone = 'error' | 'info' | 'warning' | 'success';

export function Notice({
  tone,
  title,
  children,
  action,
}: {
  tone: Tone;
  title?: string;
  children?: ComponentChildren;
  action?: ComponentChildren;
}) {
  return (
    <div class={`notice notice-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      <div>
        {title && <strong class="notice-title">{title}</strong>}
        {children && <div>{children}</div>}
      </div>
      {action && <div class="notice-action">{action}</div>}
    </div>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function EmptyState({
  title,
  children,
  action,
}: {
  title: string;
  children?: ComponentChildren;
  action?: ComponentChildren;
}) {
  return (
    <section class="empty">
      <h2>{title}</h2>
      {children}
      {action && <div class="empty-action">{action}</div>}
    </section>
  );
}

export function ErrorPanel({ message, onRetry }: { message: string; onRetry?: () => void }) {
  return (
    <Notice
      tone="error"
      title="Could not load this"
      action={
        onRetry && (
          <button type="button" class="button" onClick={onRetry}>
            Try again
          </button>
        )
      }
    >
      {message}
    </Notice>
  );
}

/** A block of text to copy: a button for the clipboard, and selectable text as the fallback. */
export function CopyBlock({ label, text, id }: { label: string; text: string; id: string }) {
  const [copied, setCopied] = useState<'idle' | 'copied' | 'failed'>('idle');
  const pre = useRef<HTMLPreElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('copied');
    } catch {
      // Clipboard access needs a secure context and permission; selecting lets Ctrl+C work.
      const range = document.createRange();
      if (pre.current) range.selectNodeContents(pre.current);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      setCopied('failed');
    }
    window.setTimeout(() => setCopied('idle'), 2500);
  };
  return (
    <div class="copy-block">
      <div class="copy-head">
        <span id={`${id}-label`} class="copy-label">
          {label}
        </span>
        <button
          type="button"
          class="button button-small"
          onClick={copy}
          aria-describedby={`${id}-label`}
        >
          {copied === 'copied' ? 'Copied' : 'Copy'}
        </button>
      </div>
      <pre ref={pre} id={id}>
        {text}
      </pre>
      <span class="sr-only" aria-live="polite">
        {copied === 'copied'
          ? `${label} copied`
          : copied === 'failed'
            ? 'Text selected: press Ctrl+C to copy'
            : ''}
      </span>
      {copied === 'failed' && <p class="hint">Selected: press Ctrl+C (⌘C) to copy.</p>}
    </div>
  );
}

/** A labelled number input of an inline form, showing the value in force as its placeholder. */
export function NumberField({
  label,
  value,
  current,
  required = false,
  onInput,
}: {
  label: string;
  value: string;
  current: number | null | undefined;
  required?: boolean;
  onInput: (value: string) => void;
}) {
  return (
    <label>
      {label}{' '}
      <input
        type="number"
        step="any"
        required={required}
        value={value}
        placeholder={current?.toString() ?? ''}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
    </label>
  );
}
