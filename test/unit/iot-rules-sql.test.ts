import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileMessageValue,
  compileOutputWriter,
  evaluateRule,
  IotSqlError,
  parseIotSql,
  type RuleMessage,
  topicFilterProblem,
  topicMatches,
} from '../../local/iot-rules/sql.ts';

function message(topic: string, payload: string | Uint8Array, extra: Partial<RuleMessage> = {}) {
  return {
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    timestamp: 1_700_000_000_123,
    ...extra,
  };
}

function run(sql: string, msg: RuleMessage) {
  return evaluateRule(parseIotSql(sql), msg);
}

function output(sql: string, msg: RuleMessage): unknown {
  const result = run(sql, msg);
  if (!result.fired) throw new Error(`rule did not fire: ${result.reason}`);
  return JSON.parse(JSON.stringify(result.output));
}

describe('IoT SQL parsing', () => {
  it('parses the SELECT list, FROM filter and WHERE clause', () => {
    const rule = parseIotSql(
      "SELECT *, topic(2) AS device_id, timestamp() AS received_at FROM 'devices/+/telemetry' WHERE temp > 20",
    );
    expect(rule.from).toBe('devices/+/telemetry');
    expect(rule.select.map((item) => (item.kind === 'star' ? '*' : item.name))).toEqual([
      '*',
      'device_id',
      'received_at',
    ]);
    expect(rule.where).toMatchObject({ kind: 'compare', op: '>' });
    expect(rule.needsJson).toBe(true);
  });

  it('knows when a rule never needs the payload as JSON', () => {
    const rule = parseIotSql(
      "select encode(*, 'base64') as data, topic() as topic, clientid() as client from 'devices/#'",
    );
    expect(rule.needsJson).toBe(false);
  });

  it('reads fields whose names are SQL words', () => {
    const msg = message('a', '{"value":5,"set":1,"order":2,"case":3,"limit":4}');
    expect(output("SELECT value, set, order, case, limit FROM 'a' WHERE value > 1", msg)).toEqual({
      value: 5,
      set: 1,
      order: 2,
      case: 3,
      limit: 4,
    });
    expect(output("SELECT value FROM 'a'", msg)).toEqual({ value: 5 });
    expect(output("SELECT value AS v FROM 'a'", msg)).toEqual({ v: 5 });
  });

  it('names unaliased fields after their last key, as AWS does', () => {
    expect(
      output(
        "SELECT state.reported.color FROM 'a'",
        message('a', '{"state":{"reported":{"color":"red"}}}'),
      ),
    ).toEqual({
      color: 'red',
    });
  });

  it.each([
    ["SELECT FROM 'a'", /unexpected keyword FROM/],
    ["SELECT * 'a'", /expected FROM after the SELECT list/],
    ['SELECT * FROM a', /FROM takes a topic filter in single quotes/],
    ["SELECT * FROM 'a/#/b'", /invalid topic filter 'a\/#\/b': # must be a whole level/],
    ["SELECT * FROM 'a/b+'", /\+ must be a whole level/],
    ["SELECT upper(x) AS y FROM 'a'", /function upper\(\) is not supported .*supported: topic\(\)/],
    ["SELECT encode(x, 'base64') AS y FROM 'a'", /encode only as encode\(\*, 'base64'\)/],
    ["SELECT encode(*, 'hex') AS y FROM 'a'", /only the 'base64' encoding/],
    ["SELECT topic(0) AS t FROM 'a'", /topic\(n\) takes a whole number of 1 or more/],
    [
      "SELECT a + 1 AS b FROM 'a'",
      /arithmetic and concatenation operators \('\+'\) are not supported/,
    ],
    ["SELECT * FROM 'a' WHERE x IN (1, 2)", /the IN operator is not supported/],
    ["SELECT * FROM 'a' WHERE x LIKE 'b%'", /the LIKE operator is not supported/],
    ["SELECT CASE x WHEN 1 THEN 2 END AS y FROM 'a'", /CASE expressions are not supported/],
    ["SELECT * FROM 'a' WHERE x = NULL", /NULL is not supported/],
    ["SELECT VALUE x FROM 'a'", /SELECT VALUE is not supported/],
    ["SELECT VALUE * FROM 'a'", /SELECT VALUE is not supported/],
    ["SELECT timestamp() FROM 'a'", /give this SELECT item a name with AS/],
    ["SELECT 'x' FROM 'a'", /give this SELECT item a name with AS/],
    ['SELECT "a" FROM \'a\'', /quoted identifiers/],
    ["SELECT * FROM 'a' WHERE x = 'open", /unterminated string literal/],
    ["SELECT * FROM 'a' WHERE (x = 1", /expected \) to close the parenthesis/],
    ["SELECT * FROM 'a' WHERE x = 1 y", /unexpected 'y' after the WHERE clause/],
    ["SELECT * FROM 'a' WHERE a < b < c", /chained comparisons need parentheses/],
    ["SELECT *, * FROM 'a'", /\* appears twice/],
    ["SELECT * FROM 'a' WHERE", /ends where an expression was expected/],
    ["SET x = 1 SELECT * FROM 'a'", /starts with SELECT/],
  ])('refuses %s', (sql, expected) => {
    expect(() => parseIotSql(sql)).toThrowError(expected);
  });

  it('reports where in the statement the problem is', () => {
    try {
      parseIotSql("SELECT * FROM 'a' WHERE x ~ 1");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(IotSqlError);
      expect((error as IotSqlError).position).toBe(26);
      expect((error as Error).message).toContain(
        `at character 27 of IoT SQL "SELECT * FROM 'a' WHERE x ~ 1"`,
      );
    }
  });
});

describe('IoT SQL evaluation', () => {
  const telemetry = message(
    'devices/dev-1/telemetry',
    '{"temp":21.5,"unit":"C","nested":{"list":[1,2,3]}}',
    {
      clientId: 'dev-1',
    },
  );

  it('merges the payload into the output with *, then adds the other items', () => {
    expect(
      output(
        "SELECT *, topic() AS topic, topic(2) AS device_id, clientid() AS client, timestamp() AS ts, 'v1' AS schema, 3 AS n, true AS flag FROM 'devices/+/telemetry'",
        telemetry,
      ),
    ).toEqual({
      temp: 21.5,
      unit: 'C',
      nested: { list: [1, 2, 3] },
      topic: 'devices/dev-1/telemetry',
      device_id: 'dev-1',
      client: 'dev-1',
      ts: 1_700_000_000_123,
      schema: 'v1',
      n: 3,
      flag: true,
    });
  });

  it('picks fields, array elements and aliases, and leaves out missing ones', () => {
    expect(
      output(
        "SELECT temp AS t, nested.list[1] AS second, missing, nested.nope.deeper AS gone, topic(9) AS level9 FROM '#'",
        telemetry,
      ),
    ).toEqual({ t: 21.5, second: 2 });
  });

  it('passes a non-object JSON payload through SELECT * alone, and does not fire when merging is needed', () => {
    const array = message('devices/d/telemetry', '[{"values":{"a":1}}]');
    expect(output("SELECT * FROM '#'", array)).toEqual([{ values: { a: 1 } }]);
    expect(run("SELECT *, topic() AS t FROM '#'", array)).toEqual({
      fired: false,
      reason: 'not-object',
    });
  });

  it('does not fire when it needs JSON fields and the payload is not JSON', () => {
    const broken = message('devices/d/telemetry', '{"temp": 21.5');
    expect(run("SELECT * FROM '#'", broken)).toEqual({ fired: false, reason: 'not-json' });
    expect(run("SELECT topic() AS t FROM '#' WHERE temp > 1", broken)).toEqual({
      fired: false,
      reason: 'not-json',
    });
    const binary = message('devices/d/telemetry', new Uint8Array([0xff, 0xfe, 0x00]));
    expect(run("SELECT temp FROM '#'", binary)).toEqual({ fired: false, reason: 'not-json' });
  });

  it("always delivers the raw payload through encode(*, 'base64')", () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0x7b]);
    expect(
      output(
        "SELECT encode(*, 'base64') AS payload, topic(2) AS device_id FROM 'devices/+/status'",
        message('devices/d/status', bytes),
      ),
    ).toEqual({ payload: Buffer.from(bytes).toString('base64'), device_id: 'd' });
    expect(
      output("SELECT encode(*, 'base64') AS payload FROM '#'", message('x', 'online')),
    ).toEqual({
      payload: Buffer.from('online').toString('base64'),
    });
  });

  it('treats an empty payload as an empty object', () => {
    expect(output("SELECT *, topic() AS t FROM '#'", message('x/y', ''))).toEqual({ t: 'x/y' });
  });

  it.each([
    ['temp > 20', true],
    ['temp >= 21.5', true],
    ['temp < 21.5', false],
    ['temp <= 21.5', true],
    ["unit = 'C'", true],
    ["unit <> 'C'", false],
    ["unit != 'F'", true],
    ["temp > '20'", true],
    ["'10' < '9'", false],
    ["'abc' < 'abd'", true],
    ["unit = 'C' AND temp > 30", false],
    ["unit = 'C' OR temp > 30", true],
    ["NOT unit = 'F'", true],
    ["NOT (unit = 'C' AND (temp > 30 OR temp < 0))", true],
    ['missing = 1', false],
    ['NOT missing = 1', false],
    ['missing <> 1', false],
    ["unit = 'C' OR missing = 1", false],
    ["temp = '21.5'", false],
    ['nested.list[0] = 1', true],
    ["topic(2) = 'dev-1'", true],
    ['clientid() = topic(2)', true],
    ['timestamp() > 0', true],
    ["'TRUE' AND true", true],
    ['1 AND true', false],
    ['temp > -5', true],
    ['temp = 21.5 AND nested.list[2] >= 3', true],
  ])('WHERE %s is %s', (where, fires) => {
    const result = run(`SELECT * FROM 'devices/+/telemetry' WHERE ${where}`, telemetry);
    expect(result.fired).toBe(fires);
    if (!fires) expect(result).toEqual({ fired: false, reason: 'where' });
  });

  it('compares objects and arrays by value', () => {
    const msg = message('a', '{"a":{"x":[1,2]},"b":{"x":[1,2]},"c":{"x":[2,1]}}');
    expect(run("SELECT * FROM 'a' WHERE a = b", msg).fired).toBe(true);
    expect(run("SELECT * FROM 'a' WHERE a = c", msg).fired).toBe(false);
  });

  it('evaluates comparisons in the SELECT list', () => {
    expect(output("SELECT temp > 30 AS hot, unit = 'C' AS celsius FROM '#'", telemetry)).toEqual({
      hot: false,
      celsius: true,
    });
  });

  it('keeps a __proto__ key in the payload an ordinary field', () => {
    const result = run("SELECT * FROM '#'", message('x', '{"__proto__":{"polluted":true},"a":1}'));
    expect(result.fired).toBe(true);
    const out = (result as { output: Record<string, unknown> }).output;
    expect(Object.keys(out)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Merged with other items into a new object, it stays a field there too.
    const merged = run(
      "SELECT *, topic() AS t FROM '#'",
      message('x', '{"__proto__":{"polluted":true},"a":1}'),
    );
    const mergedOut = (merged as { output: Record<string, unknown> }).output;
    expect(Object.keys(mergedOut)).toEqual(['__proto__', 'a', 't']);
    expect(Object.getPrototypeOf(mergedOut)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(mergedOut))).toEqual(
      JSON.parse('{"__proto__":{"polluted":true},"a":1,"t":"x"}'),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('MQTT topic filters', () => {
  it.each([
    ['devices/+/telemetry', 'devices/d1/telemetry', true],
    ['devices/+/telemetry', 'devices/d1/e1/telemetry', false],
    ['devices/+/+/state', 'devices/d1/e1/state', true],
    ['devices/#', 'devices', true],
    ['devices/#', 'devices/a/b/c', true],
    ['#', '$SYS/broker/uptime', false],
    ['+/broker/uptime', '$SYS/broker/uptime', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['a/b', 'a/b/c', false],
    ['a/+', 'a/', true],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('validates filters', () => {
    expect(topicFilterProblem('devices/+/telemetry')).toBeUndefined();
    expect(topicFilterProblem('')).toMatch(/empty/);
    expect(topicFilterProblem('a#')).toMatch(/#/);
  });
});

describe('compiled rules', () => {
  const sqls = [
    "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS client_id, timestamp() AS received_at FROM 'devices/+/telemetry'",
    "SELECT topic(3) AS entity, 'x\"y' AS tag, 42 AS n, true AS on, encode(*, 'base64') AS raw FROM '#'",
    "SELECT encode(*, 'base64') AS a, encode(*, 'base64') AS b, topic(9) AS missing FROM '#'",
    "SELECT clientid() AS __proto__, timestamp() AS t FROM '#'",
  ];

  it('writes exactly the JSON of what evaluateRule makes, for any topic, client and payload', () => {
    const writers = sqls.map((sql) => {
      const rule = parseIotSql(sql);
      const write = compileOutputWriter(rule);
      expect(write, sql).toBeDefined();
      return { rule, write: write as NonNullable<typeof write> };
    });
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 12 }), { minLength: 1, maxLength: 5 }),
        fc.option(fc.string({ unit: 'binary', maxLength: 20 }), { nil: undefined }),
        // Short payloads, and payloads whose base64 is written apart from the text around it.
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ minLength: 700, maxLength: 4000 }),
        ),
        fc.integer({ min: 0, max: 2 ** 45 }),
        (levels, clientId, payload, timestamp) => {
          const msg = {
            topic: levels.join('/'),
            payload: Buffer.from(payload),
            timestamp,
            ...(clientId === undefined ? {} : { clientId }),
          };
          for (const { rule, write } of writers) {
            const result = evaluateRule(rule, msg);
            expect(result.fired).toBe(true);
            const expected = JSON.stringify((result as { output: unknown }).output);
            expect(write(msg).toString('utf8')).toBe(expected);
          }
        },
      ),
    );
  });

  it('leaves rules that read the payload, filter or merge to evaluateRule', () => {
    for (const sql of [
      "SELECT * FROM '#'",
      "SELECT value, topic() AS topic FROM '#'",
      "SELECT topic() AS topic FROM '#' WHERE topic(2) = 'a'",
      "SELECT topic() AS t, clientid() AS t FROM '#'",
    ]) {
      expect(compileOutputWriter(parseIotSql(sql)), sql).toBeUndefined();
    }
  });

  it('computes a partition key read from the message as evaluateRule does', () => {
    for (const expression of ['topic(2)', 'topic()', 'clientid()', 'topic(7)', "'fixed'"]) {
      const rule = parseIotSql(`SELECT ${expression} AS partition_key FROM '#'`);
      const keyOf = compileMessageValue(rule);
      expect(keyOf, expression).toBeDefined();
      for (const topic of ['devices/d1/telemetry', 'devices//x/state', 'a', 'devices/d2']) {
        const msg = message(topic, '{}', { clientId: 'c-1' });
        const result = evaluateRule(rule, msg) as { output: { partition_key?: unknown } };
        expect(keyOf?.(msg), `${expression} of ${topic}`).toBe(result.output.partition_key);
      }
    }
    expect(
      compileMessageValue(parseIotSql("SELECT value AS partition_key FROM '#'")),
    ).toBeUndefined();
  });
});
