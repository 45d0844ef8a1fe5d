/**
 * The subset of AWS IoT SQL (version 2016-03-23) that EasySmart's topic rules use, parsed and
 * evaluated the way AWS IoT Core does it, so a rule behaves the same under the local emulator
 * as in production. Anything outside the subset is refused at parse time with a message naming
 * the construct: a rule that silently meant something else locally would be worse than one
 * that does not load.
 */

export const SUPPORTED_SQL_VERSION = '2016-03-23';

export class IotSqlError extends Error {
  constructor(
    message: string,
    readonly sql: string,
    /** 0-based offset into `sql` of the offending token. */
    readonly position: number,
  ) {
    super(`${message} (at character ${position + 1} of IoT SQL "${sql}")`);
    this.name = 'IotSqlError';
  }
}

export type Literal = string | number | boolean;

export type Expr =
  | { kind: 'literal'; value: Literal }
  | { kind: 'path'; segments: Array<string | number>; text: string }
  | { kind: 'topic'; level?: number }
  | { kind: 'clientid' }
  | { kind: 'timestamp' }
  | { kind: 'encodePayload' }
  | { kind: 'not'; operand: Expr }
  | { kind: 'logical'; op: 'AND' | 'OR'; left: Expr; right: Expr }
  | { kind: 'compare'; op: CompareOp; left: Expr; right: Expr };

export type CompareOp = '=' | '<>' | '<' | '>' | '<=' | '>=';

export type SelectItem = { kind: 'star' } | { kind: 'expr'; expr: Expr; name: string };

export interface IotRule {
  sql: string;
  select: SelectItem[];
  /** The FROM clause's MQTT topic filter. */
  from: string;
  where?: Expr;
  /** Whether evaluating the rule needs the payload parsed as JSON. */
  needsJson: boolean;
}

export interface RuleMessage {
  topic: string;
  payload: Uint8Array;
  /** The publishing client's id, for `clientid()`; undefined when unknown. */
  clientId?: string;
  /** Milliseconds since the epoch at which the broker received the message. */
  timestamp: number;
}

/**
 * `encode(*, 'base64')` as a SELECT item: the payload, which serialises (toJSON) as its base64
 * text. The emulator writes that text straight into its buffers: made into a string first,
 * JSON.stringify scanned it for characters to escape and copied it, and writing the result
 * as UTF-8 scanned and copied it again (a fifth of the emulator's time with 2 KB payloads).
 */
export class Base64Payload {
  constructor(readonly bytes: Buffer) {}

  /** Characters of the base64 text. */
  get length(): number {
    return Math.ceil(this.bytes.length / 3) * 4;
  }

  toJSON(): string {
    return this.bytes.toString('base64');
  }
}

export type RuleResult =
  /** `output` is a JSON value, but for Base64Payload values in an object's fields. */
  | { fired: true; output: unknown }
  | {
      fired: false;
      /**
       * `where`: the WHERE clause was not true. `not-json`: the rule reads JSON fields and
       * the payload is not JSON, so AWS does not run the rule's actions. `not-object`: the
       * payload is JSON but not an object, so `*` has no fields to merge other items into.
       */
      reason: 'where' | 'not-json' | 'not-object';
    };

// ---------------------------------------------------------------------------------------
// Tokenizer

type Token =
  | { type: 'ident'; text: string; upper: string; pos: number }
  | { type: 'string'; value: string; pos: number }
  | { type: 'number'; value: number; pos: number }
  | { type: 'op'; text: string; pos: number }
  | { type: 'end'; pos: number };

const OPERATORS = ['<>', '!=', '<=', '>=', '=', '<', '>', '(', ')', ',', '.', '*', '[', ']'];
const ARITHMETIC = new Set(['+', '-', '/', '%', '|']);

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i] as string;
    if (/\s/.test(ch)) {
      i += 1;
      continue;
    }
    if (ch === "'") {
      const start = i;
      let value = '';
      i += 1;
      for (;;) {
        if (i >= sql.length) throw new IotSqlError('unterminated string literal', sql, start);
        const c = sql[i] as string;
        if (c === "'") {
          // Two quotes in a row stand for one quote character, as in ANSI SQL.
          if (sql[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        if (c === '\\' && i + 1 < sql.length) {
          value += sql[i + 1];
          i += 2;
          continue;
        }
        value += c;
        i += 1;
      }
      tokens.push({ type: 'string', value, pos: start });
      continue;
    }
    const numberMatch = /^\d+(\.\d+)?([eE][+-]?\d+)?/.exec(sql.slice(i));
    if (numberMatch) {
      tokens.push({ type: 'number', value: Number(numberMatch[0]), pos: i });
      i += numberMatch[0].length;
      continue;
    }
    const identMatch = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i));
    if (identMatch) {
      const text = identMatch[0];
      tokens.push({ type: 'ident', text, upper: text.toUpperCase(), pos: i });
      i += text.length;
      continue;
    }
    if (ch === '-' && /\d/.test(sql[i + 1] ?? '')) {
      // Only a negative number literal; binary minus is arithmetic, which is out of scope.
      const previous = tokens.at(-1);
      const afterOperand =
        previous &&
        (previous.type === 'number' ||
          previous.type === 'string' ||
          (previous.type === 'ident' && !KEYWORDS.has(previous.upper)) ||
          (previous.type === 'op' && (previous.text === ')' || previous.text === ']')));
      if (!afterOperand) {
        const match = /^-\d+(\.\d+)?([eE][+-]?\d+)?/.exec(sql.slice(i)) as RegExpExecArray;
        tokens.push({ type: 'number', value: Number(match[0]), pos: i });
        i += match[0].length;
        continue;
      }
    }
    const op = OPERATORS.find((candidate) => sql.startsWith(candidate, i));
    if (op) {
      tokens.push({ type: 'op', text: op === '!=' ? '<>' : op, pos: i });
      i += op.length;
      continue;
    }
    if (ARITHMETIC.has(ch)) {
      throw new IotSqlError(
        `arithmetic and concatenation operators ('${ch}') are not supported by the local IoT rules emulator`,
        sql,
        i,
      );
    }
    if (ch === '"' || ch === '`') {
      throw new IotSqlError(
        `quoted identifiers (${ch}...${ch}) are not supported by the local IoT rules emulator; strings use single quotes`,
        sql,
        i,
      );
    }
    throw new IotSqlError(`unexpected character '${ch}'`, sql, i);
  }
  tokens.push({ type: 'end', pos: sql.length });
  return tokens;
}

const KEYWORDS = new Set(['SELECT', 'FROM', 'WHERE', 'AS', 'AND', 'OR', 'NOT', 'TRUE', 'FALSE']);
// Recognised only where they cannot be a field name (payloads do have fields called `value`
// or `set`), to say plainly that they are unsupported rather than report a syntax error.
const UNSUPPORTED_OPERATORS = new Set(['IN', 'LIKE', 'IS', 'BETWEEN']);
const UNSUPPORTED_LITERALS = new Set(['NULL', 'UNDEFINED']);
const FUNCTIONS = "topic(), topic(n), clientid(), timestamp(), encode(*, 'base64')";

// ---------------------------------------------------------------------------------------
// Parser

class Parser {
  private index = 0;
  private usesJson = false;

  constructor(
    private readonly sql: string,
    private readonly tokens: Token[],
  ) {}

  parse(): IotRule {
    this.expectKeyword('SELECT', 'an IoT SQL statement starts with SELECT');
    const select = this.parseSelectList();
    this.expectKeyword('FROM', 'expected FROM after the SELECT list');
    const fromToken = this.next();
    if (fromToken.type !== 'string') {
      this.fail(
        "FROM takes a topic filter in single quotes, e.g. FROM 'devices/+/telemetry'",
        fromToken,
      );
    }
    const from = fromToken.value;
    const filterProblem = topicFilterProblem(from);
    if (filterProblem) this.fail(`invalid topic filter '${from}': ${filterProblem}`, fromToken);
    let where: Expr | undefined;
    if (this.peekKeyword('WHERE')) {
      this.index += 1;
      where = this.parseOr();
    }
    const rest = this.peek();
    if (rest.type !== 'end') {
      this.fail(
        `unexpected ${describe(rest)} after the ${where ? 'WHERE clause' : 'FROM clause'}`,
        rest,
      );
    }
    return { sql: this.sql, select, from, where, needsJson: this.usesJson };
  }

  private parseSelectList(): SelectItem[] {
    const items: SelectItem[] = [];
    const first = this.peek();
    const second = this.tokens[this.index + 1];
    if (
      first.type === 'ident' &&
      first.upper === 'VALUE' &&
      second &&
      (second.type === 'ident'
        ? second.upper !== 'FROM' && second.upper !== 'AS'
        : second.type !== 'op' || second.text === '(' || second.text === '*')
    ) {
      this.fail('SELECT VALUE is not supported by the local IoT rules emulator', first);
    }
    for (;;) {
      const token = this.peek();
      if (token.type === 'op' && token.text === '*') {
        this.index += 1;
        if (items.some((item) => item.kind === 'star')) this.fail('* appears twice', token);
        this.usesJson = true;
        items.push({ kind: 'star' });
      } else {
        const expr = this.parseOr();
        let name: string | undefined;
        if (this.peekKeyword('AS')) {
          this.index += 1;
          const alias = this.next();
          if (alias.type === 'ident' && !KEYWORDS.has(alias.upper)) name = alias.text;
          else if (alias.type === 'string') name = alias.value;
          else this.fail('AS must be followed by a name', alias);
        } else if (expr.kind === 'path') {
          // AWS names an unaliased field after its last key: `state.reported.color` -> color.
          const last = expr.segments.at(-1);
          if (typeof last === 'string') name = last;
        }
        if (name === undefined) {
          this.fail(
            'give this SELECT item a name with AS (the local emulator does not invent names for computed values)',
            token,
          );
        }
        items.push({ kind: 'expr', expr, name });
      }
      const separator = this.peek();
      if (separator.type === 'op' && separator.text === ',') {
        this.index += 1;
        continue;
      }
      return items;
    }
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.peekKeyword('OR')) {
      this.index += 1;
      left = { kind: 'logical', op: 'OR', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.peekKeyword('AND')) {
      this.index += 1;
      left = { kind: 'logical', op: 'AND', left, right: this.parseNot() };
    }
    return left;
  }

  private parseNot(): Expr {
    if (this.peekKeyword('NOT')) {
      this.index += 1;
      return { kind: 'not', operand: this.parseNot() };
    }
    return this.parseComparison();
  }

  private parseComparison(): Expr {
    const left = this.parsePrimary();
    const token = this.peek();
    if (token.type === 'op' && ['=', '<>', '<', '>', '<=', '>='].includes(token.text)) {
      this.index += 1;
      const right = this.parsePrimary();
      const after = this.peek();
      if (after.type === 'op' && ['=', '<>', '<', '>', '<=', '>='].includes(after.text)) {
        this.fail('chained comparisons need parentheses', after);
      }
      return { kind: 'compare', op: token.text as CompareOp, left, right };
    }
    if (token.type === 'ident' && UNSUPPORTED_OPERATORS.has(token.upper)) {
      this.fail(
        `the ${token.upper} operator is not supported by the local IoT rules emulator`,
        token,
      );
    }
    return left;
  }

  private parsePrimary(): Expr {
    const token = this.next();
    switch (token.type) {
      case 'string':
        return { kind: 'literal', value: token.value };
      case 'number':
        return { kind: 'literal', value: token.value };
      case 'op':
        if (token.text === '(') {
          const inner = this.parseOr();
          this.expectOp(')', 'expected ) to close the parenthesis');
          return inner;
        }
        if (token.text === '*') {
          this.fail(`* is only allowed as a SELECT item or as encode(*, 'base64')`, token);
        }
        return this.fail(`unexpected ${describe(token)}`, token);
      case 'end':
        return this.fail('the statement ends where an expression was expected', token);
      case 'ident':
        break;
    }
    if (token.upper === 'TRUE' || token.upper === 'FALSE') {
      return { kind: 'literal', value: token.upper === 'TRUE' };
    }
    if (UNSUPPORTED_LITERALS.has(token.upper)) {
      this.fail(`${token.upper} is not supported by the local IoT rules emulator`, token);
    }
    if (
      token.upper === 'CASE' &&
      this.tokens.some((t) => t.type === 'ident' && t.upper === 'WHEN')
    ) {
      this.fail('CASE expressions are not supported by the local IoT rules emulator', token);
    }
    if (KEYWORDS.has(token.upper)) this.fail(`unexpected keyword ${token.upper}`, token);
    const open = this.peek();
    if (open.type === 'op' && open.text === '(') {
      this.index += 1;
      return this.parseCall(token);
    }
    return this.parsePath(token);
  }

  private parseCall(name: Extract<Token, { type: 'ident' }>): Expr {
    const fn = name.text.toLowerCase();
    switch (fn) {
      case 'topic': {
        const arg = this.peek();
        if (arg.type === 'op' && arg.text === ')') {
          this.index += 1;
          return { kind: 'topic' };
        }
        if (arg.type !== 'number' || !Number.isInteger(arg.value) || arg.value < 1) {
          this.fail('topic(n) takes a whole number of 1 or more', arg);
        }
        this.index += 1;
        this.expectOp(')', 'topic(n) takes one argument');
        return { kind: 'topic', level: arg.value };
      }
      case 'clientid':
        this.expectOp(')', 'clientid() takes no arguments');
        return { kind: 'clientid' };
      case 'timestamp':
        this.expectOp(')', 'timestamp() takes no arguments');
        return { kind: 'timestamp' };
      case 'encode': {
        const star = this.next();
        if (star.type !== 'op' || star.text !== '*') {
          this.fail(`the local emulator supports encode only as encode(*, 'base64')`, star);
        }
        this.expectOp(',', `expected , in encode(*, 'base64')`);
        const encoding = this.next();
        if (encoding.type !== 'string' || encoding.value !== 'base64') {
          this.fail(`encode supports only the 'base64' encoding`, encoding);
        }
        this.expectOp(')', `expected ) to close encode(*, 'base64')`);
        return { kind: 'encodePayload' };
      }
      default:
        return this.fail(
          `function ${name.text}() is not supported by the local IoT rules emulator (supported: ${FUNCTIONS})`,
          name,
        );
    }
  }

  private parsePath(first: Extract<Token, { type: 'ident' }>): Expr {
    const segments: Array<string | number> = [first.text];
    let text = first.text;
    for (;;) {
      const token = this.peek();
      if (token.type === 'op' && token.text === '.') {
        this.index += 1;
        const key = this.next();
        if (key.type !== 'ident') this.fail('expected a field name after .', key);
        segments.push(key.text);
        text += `.${key.text}`;
        continue;
      }
      if (token.type === 'op' && token.text === '[') {
        this.index += 1;
        const position = this.next();
        if (position.type !== 'number' || !Number.isInteger(position.value) || position.value < 0) {
          this.fail('array indexes are whole numbers from 0', position);
        }
        this.expectOp(']', 'expected ] after the array index');
        segments.push(position.value);
        text += `[${position.value}]`;
        continue;
      }
      break;
    }
    this.usesJson = true;
    return { kind: 'path', segments, text };
  }

  private peek(): Token {
    return this.tokens[this.index] as Token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.type !== 'end') this.index += 1;
    return token;
  }

  private peekKeyword(keyword: string): boolean {
    const token = this.peek();
    return token.type === 'ident' && token.upper === keyword;
  }

  private expectKeyword(keyword: string, message: string): void {
    const token = this.next();
    if (token.type !== 'ident' || token.upper !== keyword) this.fail(message, token);
  }

  private expectOp(op: string, message: string): void {
    const token = this.next();
    if (token.type !== 'op' || token.text !== op) this.fail(message, token);
  }

  private fail(message: string, token: Token): never {
    throw new IotSqlError(message, this.sql, token.pos);
  }
}

function describe(token: Token): string {
  switch (token.type) {
    case 'ident':
      return `'${token.text}'`;
    case 'string':
      return `string '${token.value}'`;
    case 'number':
      return `number ${token.value}`;
    case 'op':
      return `'${token.text}'`;
    case 'end':
      return 'end of statement';
  }
}

/** Parses a rule's SQL, throwing `IotSqlError` for anything outside the supported subset. */
export function parseIotSql(sql: string): IotRule {
  return new Parser(sql, tokenize(sql)).parse();
}

// ---------------------------------------------------------------------------------------
// Topic filters

/** Why `filter` is not a valid MQTT topic filter, or undefined if it is. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'it is empty';
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '# must be a whole level and the last one';
    }
    if (level.includes('+') && level !== '+') return '+ must be a whole level';
  }
  return undefined;
}

/** MQTT topic matching, including the rule that wildcards do not match `$`-topics' first level. */
export function topicMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (let i = 0; i < filterLevels.length; i += 1) {
    const level = filterLevels[i];
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

// ---------------------------------------------------------------------------------------
// Evaluation

/** The absence of a value, AWS IoT SQL's `Undefined`; omitted from the rule's output. */
type Value = unknown;

const NOT_JSON = Symbol('not-json');

class Evaluation {
  private parsed: unknown | typeof NOT_JSON | undefined;
  private parsedDone = false;

  constructor(private readonly message: RuleMessage) {}

  /** The payload as JSON; an empty payload counts as `{}`, as AWS lets rules add to it. */
  json(): unknown {
    if (!this.parsedDone) {
      this.parsedDone = true;
      const { payload } = this.message;
      if (payload.length === 0) {
        this.parsed = {};
      } else {
        try {
          this.parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
        } catch {
          this.parsed = NOT_JSON;
        }
      }
    }
    return this.parsed;
  }

  /** The payload as a Buffer: a view, where Buffer.from(payload) would copy it. */
  payloadBytes(): Buffer {
    const { payload } = this.message;
    return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  }

  evaluate(expr: Expr): Value {
    switch (expr.kind) {
      case 'literal':
        return expr.value;
      case 'path': {
        let current: unknown = this.json();
        for (const segment of expr.segments) {
          if (typeof segment === 'number') {
            current = Array.isArray(current) ? current[segment] : undefined;
          } else if (current !== null && typeof current === 'object' && !Array.isArray(current)) {
            current = Object.hasOwn(current, segment)
              ? (current as Record<string, unknown>)[segment]
              : undefined;
          } else {
            current = undefined;
          }
          if (current === undefined) return undefined;
        }
        return current;
      }
      case 'topic':
        return expr.level === undefined
          ? this.message.topic
          : this.message.topic.split('/')[expr.level - 1];
      case 'clientid':
        return this.message.clientId;
      case 'timestamp':
        return this.message.timestamp;
      case 'encodePayload':
        return this.payloadBytes().toString('base64');
      case 'not': {
        const operand = toBoolean(this.evaluate(expr.operand));
        return operand === undefined ? undefined : !operand;
      }
      case 'logical': {
        const left = toBoolean(this.evaluate(expr.left));
        const right = toBoolean(this.evaluate(expr.right));
        if (left === undefined || right === undefined) return undefined;
        return expr.op === 'AND' ? left && right : left || right;
      }
      case 'compare':
        return compare(expr.op, this.evaluate(expr.left), this.evaluate(expr.right));
    }
  }
}

/** Booleans, and the strings 'true'/'false' in any case, as AWS's logical operators accept. */
function toBoolean(value: Value): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return undefined;
}

function asNumber(value: Value): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

function sameValue(left: Value, right: Value): boolean {
  if (typeof left !== typeof right) return false;
  if (left === null || right === null || typeof left !== 'object') return left === right;
  if (Array.isArray(left) !== Array.isArray(right)) return false;
  if (Array.isArray(left)) {
    const other = right as unknown[];
    return left.length === other.length && left.every((item, i) => sameValue(item, other[i]));
  }
  const a = left as Record<string, unknown>;
  const b = right as Record<string, unknown>;
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && sameValue(a[key], b[key]))
  );
}

/**
 * Comparisons with a missing value are Undefined (so a WHERE on an absent field is not
 * true); `=`/`<>` compare values of the same type, and values of different types are
 * unequal; ordering compares numbers (a numeric string counts as its number) or two strings.
 */
function compare(op: CompareOp, left: Value, right: Value): Value {
  if (left === undefined || right === undefined) return undefined;
  if (op === '=') return sameValue(left, right);
  if (op === '<>') return !sameValue(left, right);
  let order: number;
  if (typeof left === 'string' && typeof right === 'string') {
    const a = asNumber(left);
    const b = asNumber(right);
    if (a !== undefined && b !== undefined) order = a - b;
    else order = left < right ? -1 : left > right ? 1 : 0;
  } else {
    const a = asNumber(left);
    const b = asNumber(right);
    if (a === undefined || b === undefined) return undefined;
    order = a - b;
  }
  switch (op) {
    case '<':
      return order < 0;
    case '>':
      return order > 0;
    case '<=':
      return order <= 0;
    case '>=':
      return order >= 0;
  }
}

/**
 * Applies a rule to one message: the SELECT output AWS would hand to the rule's actions, or
 * why the rule does not fire.
 */
export function evaluateRule(rule: IotRule, message: RuleMessage): RuleResult {
  const evaluation = new Evaluation(message);
  if (rule.needsJson && evaluation.json() === NOT_JSON) return { fired: false, reason: 'not-json' };
  if (rule.where && toBoolean(evaluation.evaluate(rule.where)) !== true) {
    return { fired: false, reason: 'where' };
  }
  const hasStar = rule.select.some((item) => item.kind === 'star');
  const payload = hasStar ? evaluation.json() : undefined;
  const isObject = payload !== null && typeof payload === 'object' && !Array.isArray(payload);
  if (hasStar && !isObject) {
    // `SELECT *` alone passes any JSON value through; merging other items needs an object.
    if (rule.select.length === 1) return { fired: true, output: payload };
    return { fired: false, reason: 'not-object' };
  }
  // An ordinary object (outputs of one rule share a shape, which JSON.stringify is quick
  // with); `__proto__` is defined, not assigned, so that it stays an ordinary field.
  const output: Record<string, unknown> = {};
  for (const item of rule.select) {
    if (item.kind === 'star') {
      for (const [key, value] of Object.entries(payload as object)) setField(output, key, value);
      continue;
    }
    const value =
      item.expr.kind === 'encodePayload'
        ? new Base64Payload(evaluation.payloadBytes())
        : evaluation.evaluate(item.expr);
    if (value !== undefined) setField(output, item.name, value);
  }
  return { fired: true, output };
}

function setField(output: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(output, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    output[key] = value;
  }
}

// ---------------------------------------------------------------------------------------
// Compiled rules

/** A value taken from the message alone (never from its payload's JSON). */
type MessageValue = (message: RuleMessage) => Value;

function messageValue(expr: Expr): MessageValue | undefined {
  switch (expr.kind) {
    case 'literal': {
      const { value } = expr;
      return () => value;
    }
    case 'topic': {
      const { level } = expr;
      if (level === undefined) return (message) => message.topic;
      return (message) => topicLevel(message.topic, level);
    }
    case 'clientid':
      return (message) => message.clientId;
    case 'timestamp':
      return (message) => message.timestamp;
    default:
      return undefined;
  }
}

/** `topic.split('/')[level - 1]`, without making the array. */
function topicLevel(topic: string, level: number): string | undefined {
  let from = 0;
  for (let n = 1; n < level; n++) {
    const slash = topic.indexOf('/', from);
    if (slash === -1) return undefined;
    from = slash + 1;
  }
  const end = topic.indexOf('/', from);
  return end === -1 ? topic.slice(from) : topic.slice(from, end);
}

/**
 * A rule whose output reads the message's topic, client id, time and `encode(*, 'base64')`
 * only (no `*`, no payload fields, no WHERE), as a writer of its output's JSON into a buffer
 * reused by the next call: byte for byte what `JSON.stringify(evaluateRule(...).output)`
 * makes (the rule always fires). Building the output object and serialising it field by
 * field was a sixth of the rules emulator's CPU per one-reading message. Undefined for any
 * other rule, which `evaluateRule` runs.
 */
export function compileOutputWriter(rule: IotRule): ((message: RuleMessage) => Buffer) | undefined {
  if (rule.where || rule.needsJson) return undefined;
  const fields: Array<{ key: string; payload: true } | { key: string; value: MessageValue }> = [];
  const names = new Set<string>();
  for (const item of rule.select) {
    if (item.kind === 'star' || names.has(item.name)) return undefined;
    names.add(item.name);
    if (item.expr.kind === 'encodePayload') {
      fields.push({ key: JSON.stringify(item.name), payload: true });
      continue;
    }
    const value = messageValue(item.expr);
    if (!value) return undefined;
    fields.push({ key: JSON.stringify(item.name), value });
  }
  const keysAscii = fields.every((field) => !NOT_ASCII.test(field.key));
  let scratch = Buffer.allocUnsafe(64 * 1024);
  // The output's JSON text made as one string (a payload field's value is its base64
  // between quotes; a field whose value is undefined is left out, as JSON.stringify does),
  // then written once: a write per part cost more than the text. A long payload's base64 is
  // written on its own, though: joined, it is copied once more (V8 flattens the joined
  // string before writing it), garbage of the size of the payload for every message.
  return (message) => {
    // JSON text, then alternately a long payload's base64 and the JSON text after it.
    const pieces: string[] = [];
    let text = '{';
    let first = true;
    // Text of ASCII only (the usual: base64, digits, device topics) is written byte for
    // character, which costs a fraction of encoding UTF-8.
    let ascii = keysAscii;
    for (let index = 0; index < fields.length; index++) {
      const field = fields[index] as (typeof fields)[number];
      if ('payload' in field) {
        const { payload } = message;
        // The emulator's payloads are Buffers already: no view made per message for them.
        const bytes = Buffer.isBuffer(payload)
          ? payload
          : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
        const base64 = bytes.toString('base64');
        text += `${first ? '' : ','}${field.key}:"`;
        first = false;
        if (base64.length > WRITTEN_APART_CHARACTERS) {
          pieces.push(text, base64);
          text = '"';
        } else {
          text += `${base64}"`;
        }
        continue;
      }
      const result = field.value(message);
      const value = result === undefined ? undefined : JSON.stringify(result);
      if (value === undefined) continue;
      if (ascii && NOT_ASCII.test(value)) ascii = false;
      text += `${first ? '' : ','}${field.key}:${value}`;
      first = false;
    }
    pieces.push(`${text}}`);
    // A UTF-16 unit is at most 3 bytes of UTF-8; base64 is a byte a character.
    let most = 0;
    for (let index = 0; index < pieces.length; index++) {
      most += (pieces[index] as string).length * (index % 2 === 0 ? 3 : 1);
    }
    if (most > scratch.length) scratch = Buffer.allocUnsafe(most);
    let at = 0;
    for (let index = 0; index < pieces.length; index++) {
      at += scratch.write(
        pieces[index] as string,
        at,
        index % 2 === 1 || ascii ? 'latin1' : 'utf8',
      );
    }
    return scratch.subarray(0, at);
  };
}

/**
 * Base64 text longer than this is written into a buffer by itself rather than joined with
 * the text around it first (see `compileOutputWriter`); shorter, one write costs less.
 */
export const WRITTEN_APART_CHARACTERS = 1024;

/** A character outside ASCII (which UTF-8 writes as more than one byte). */
export const NOT_ASCII = /[\u0080-\uffff]/;

/**
 * A single-item rule (a partition key's `SELECT <expr> AS partition_key`) whose item reads
 * the message alone, as a function of the message; undefined for any other.
 */
export function compileMessageValue(rule: IotRule): MessageValue | undefined {
  if (rule.where || rule.needsJson || rule.select.length !== 1) return undefined;
  const [item] = rule.select;
  if (!item || item.kind === 'star') return undefined;
  return messageValue(item.expr);
}
