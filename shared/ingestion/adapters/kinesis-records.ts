import type { KinesisStreamEvent } from 'aws-lambda';
import type { InboundRecord } from '../domain/model.ts';
import { MAX_PAYLOAD_BYTES } from '../domain/payload-limits.ts';

/**
 * The IoT rule outputs in a Kinesis event: each record's data is the rule's SELECT output as
 * JSON (the topic rule's Kinesis action writes it so), base64-encoded by Lambda. A record
 * that does not decode is handed on as it is, for ingestion to reject as not a rule event.
 */
export function streamRecords(event: KinesisStreamEvent): InboundRecord[] {
  const records = event.Records ?? [];
  const inbound: InboundRecord[] = new Array(records.length);
  for (let index = 0; index < records.length; index++) {
    const { data, sequenceNumber } = (records[index] as (typeof records)[number]).kinesis;
    // The last three digits are the sequence number modulo 1,000, without a BigInt.
    inbound[index] = { event: ruleOutputOf(data), ordinal: Number(sequenceNumber.slice(-3)) || 0 };
  }
  return inbound;
}

// A record's data is decoded into this buffer, kept for the purpose (what is read from it is
// copied out before the next record): a Buffer per record took a new 8 KB pool every few
// records. Data too large for it cannot hold a payload within the limit anyway.
// Its own ArrayBuffer, so that `scratchWords` sees its bytes four at a time from offset 0.
const scratch = Buffer.from(new ArrayBuffer(2 * MAX_PAYLOAD_BYTES));
const scratchWords = new Uint32Array(scratch.buffer);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const PREFIX = Buffer.from('{"payload":"');
const TOPIC = Buffer.from('","topic":"');
const CLIENT_ID = Buffer.from('","client_id":"');
const RECEIVED_AT = Buffer.from('","received_at":');

/** A byte loop: `Buffer.compare`'s argument checks cost more than comparing a dozen bytes. */
function startsWith(bytes: Buffer, at: number, text: Buffer): boolean {
  if (at + text.length > bytes.length) return false;
  for (let index = 0; index < text.length; index++) {
    if (bytes[at + index] !== text[index]) return false;
  }
  return true;
}

/** Where the JSON string starting at `from` ends (its closing quote), or -1 if it has escapes. */
function plainStringEnd(bytes: Buffer, from: number, end: number): number {
  for (let at = from; at < end; at++) {
    const byte = bytes[at] as number;
    if (byte === QUOTE) return at;
    if (byte === BACKSLASH || byte < 0x20 || byte >= 0x80) return -1;
  }
  return -1;
}

/**
 * Whether the scratch bytes `from`..`to` hold no backslash, control character or non-ASCII
 * byte, four bytes at a time: the payload's base64 text is most of each record, and a
 * byte loop over it was the largest part of reading the records (bench/README.md).
 */
function plainScratchText(from: number, to: number): boolean {
  let at = from;
  const firstWord = (from + 3) >>> 2;
  const lastWord = to >>> 2;
  if (firstWord < lastWord) {
    for (; at < firstWord << 2; at++) if (!plainByte(scratch[at] as number)) return false;
    for (let index = firstWord; index < lastWord; index++) {
      const word = scratchWords[index] as number;
      // A byte of 0x80 or more; a byte below 0x20; a backslash byte (see "Bit Twiddling
      // Hacks", "Determine if a word has a byte less than n" and "...equal to n").
      const backslashes = word ^ 0x5c5c5c5c;
      if (
        (word & 0x80808080) !== 0 ||
        ((word - 0x20202020) & ~word & 0x80808080) !== 0 ||
        ((backslashes - 0x01010101) & ~backslashes & 0x80808080) !== 0
      )
        return false;
    }
    at = lastWord << 2;
  }
  for (; at < to; at++) if (!plainByte(scratch[at] as number)) return false;
  return true;
}

const plainByte = (byte: number) => byte !== BACKSLASH && byte >= 0x20 && byte < 0x80;

/**
 * The rule output in a record's data. The topic rules' output, `{"payload":"<base64>",
 * "topic":"...","client_id":"...","received_at":<ms>}` with plain ASCII strings, is read
 * straight from its bytes: JSON.parse scanned the payload's base64 text and made a string of
 * the whole output first. Anything else goes to JSON.parse, which decides.
 */
function ruleOutputOf(data: string): unknown {
  if (Math.ceil((data.length * 3) / 4) <= scratch.length) {
    const end = scratch.write(data, 0, 'base64');
    const fast = plainRuleOutput(end);
    if (fast) return fast;
    return parse(scratch.toString('utf8', 0, end));
  }
  return parse(Buffer.from(data, 'base64').toString('utf8'));
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The rule output in the scratch bytes up to `end`, if it is in the topic rules' form. */
function plainRuleOutput(end: number): Record<string, unknown> | undefined {
  const bytes = scratch;
  if (!startsWith(bytes, 0, PREFIX)) return undefined;
  const payloadFrom = PREFIX.length;
  // The first quote (native search), then what precedes it checked for escapes.
  const payloadEnd = bytes.indexOf(QUOTE, payloadFrom);
  if (payloadEnd === -1 || payloadEnd >= end || !plainScratchText(payloadFrom, payloadEnd))
    return undefined;
  if (!startsWith(bytes, payloadEnd, TOPIC)) return undefined;
  const topicFrom = payloadEnd + TOPIC.length;
  const topicEnd = plainStringEnd(bytes, topicFrom, end);
  if (topicEnd === -1) return undefined;
  let at = topicEnd;
  let clientId: string | undefined;
  if (startsWith(bytes, at, CLIENT_ID)) {
    const clientFrom = at + CLIENT_ID.length;
    const clientEnd = plainStringEnd(bytes, clientFrom, end);
    if (clientEnd === -1) return undefined;
    clientId = bytes.toString('latin1', clientFrom, clientEnd);
    at = clientEnd;
  }
  if (!startsWith(bytes, at, RECEIVED_AT)) return undefined;
  const numberFrom = at + RECEIVED_AT.length;
  let numberEnd = numberFrom;
  // At most 15 digits (checked below), so the sum is exact.
  let receivedAt = 0;
  while (
    numberEnd < end &&
    (bytes[numberEnd] as number) >= 0x30 &&
    (bytes[numberEnd] as number) <= 0x39
  ) {
    receivedAt = receivedAt * 10 + ((bytes[numberEnd] as number) - 0x30);
    numberEnd++;
  }
  // Whole milliseconds and the closing brace, nothing after: otherwise JSON.parse decides.
  if (numberEnd === numberFrom || numberEnd - numberFrom > 15 || numberEnd !== end - 1)
    return undefined;
  if (bytes[numberEnd] !== 0x7d || bytes[numberFrom] === 0x30) return undefined;
  return {
    payload: bytes.toString('latin1', payloadFrom, payloadEnd),
    topic: bytes.toString('latin1', topicFrom, topicEnd),
    ...(clientId === undefined ? {} : { client_id: clientId }),
    received_at: receivedAt,
  };
}
