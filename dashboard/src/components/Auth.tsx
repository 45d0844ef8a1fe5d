import { useState } from 'preact/hooks';
import { type Api, ApiError, describeError } from '../api.ts';
import { href } from '../router.ts';
import { Notice } from './ui.tsx';

interface AuthProps {
  api: Api;
  onSignedIn: (token: string, expiresIn?: number) => void;
  /** Why the user landed here, e.g. an expired session. */
  message?: string | null;
}

function Brand() {
  return (
    <div class="auth-brand">
      <span class="logo" aria-hidden="true" />
      <span>EasySmart</span>
    </div>
  );
}

export function SignIn({ api, onSignedIn, message }: AuthProps) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await api.login({ username: username.trim(), password });
      onSignedIn(result.token, result.expires_in);
    } catch (failure) {
      setError(
        failure instanceof ApiError && failure.status === 401
          ? 'Wrong username or password. Check both and try again.'
          : describeError(failure),
      );
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="signin-title">
        <Brand />
        <h1 id="signin-title">Sign in</h1>
        {message && <Notice tone="info">{message}</Notice>}
        {error && <Notice tone="error">{error}</Notice>}
        <label for="signin-username">Username or email</label>
        <input
          id="signin-username"
          name="username"
          autoComplete="username"
          required
          value={username}
          onInput={(e) => setUsername(e.currentTarget.value)}
        />
        <label for="signin-password">Password</label>
        <input
          id="signin-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <button type="submit" class="button button-primary button-block" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="auth-switch">
          New to EasySmart? <a href={href({ name: 'signup' })}>Create an organisation</a>
        </p>
      </form>
    </main>
  );
}

export function SignUp({ api, onSignedIn }: AuthProps) {
  const [form, setForm] = useState({ tenant_name: '', username: '', email: '', password: '' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: keyof typeof form) => ({
    value: form[key],
    onInput: (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value }),
  });

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await api.register({
        tenant_name: form.tenant_name.trim(),
        username: form.username.trim(),
        email: form.email.trim(),
        password: form.password,
      });
      onSignedIn(result.token, result.expires_in);
    } catch (failure) {
      setError(describeError(failure));
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="signup-title">
        <Brand />
        <h1 id="signup-title">Create your organisation</h1>
        <p class="muted">You become its owner and can invite colleagues afterwards.</p>
        {error && <Notice tone="error">{error}</Notice>}
        <label for="signup-tenant">Organisation name</label>
        <input
          id="signup-tenant"
          required
          maxLength={255}
          autoComplete="organization"
          {...field('tenant_name')}
        />
        <label for="signup-username">Username</label>
        <input
          id="signup-username"
          required
          minLength={3}
          maxLength={100}
          pattern="[A-Za-z0-9._\-]+"
          title="Letters, digits, dot, underscore and hyphen"
          autoComplete="username"
          aria-describedby="signup-username-hint"
          {...field('username')}
        />
        <small id="signup-username-hint" class="hint">
          3–100 letters, digits, dots, underscores or hyphens.
        </small>
        <label for="signup-email">Email</label>
        <input id="signup-email" type="email" required autoComplete="email" {...field('email')} />
        <label for="signup-password">Password</label>
        <input
          id="signup-password"
          type="password"
          required
          minLength={10}
          autoComplete="new-password"
          aria-describedby="signup-password-hint"
          {...field('password')}
        />
        <small id="signup-password-hint" class="hint">
          At least 10 characters, not a common password.
        </small>
        <button type="submit" class="button button-primary button-block" disabled={busy}>
          {busy ? 'Creating…' : 'Create organisation'}
        </button>
        <p class="auth-switch">
          Already have an account? <a href={href({ name: 'signin' })}>Sign in</a>
        </p>
      </form>
    </main>
  );
}
