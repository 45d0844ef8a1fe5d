/**
 * The local stand-in for the AWS IoT data-plane endpoint, so that function code publishing
 * with `@aws-sdk/client-iot-data-plane`'s `PublishCommand` runs unchanged: the SDK's
 * `endpoint` points here and the message goes to Mosquitto as the platform's MQTT account.
 *
 * It implements `Publish` only (`POST /topics/{topic}`), with AWS's status codes and JSON
 * error shape, and does not check SigV4 signatures: it listens on 127.0.0.1 only, and anyone
 * who can reach it locally can read the platform's broker password from the data dir anyway.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../../shared/logger.ts';

export type DataPlaneLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface DataPlaneEndpointOptions {
  /** Default: a free port. */
  port?: number;
  /** The platform's broker account (may publish under devices/#). */
  mqtt: { url: string; username: string; password: string };
  log: DataPlaneLog;
  /** Default: unique per process, so two stacks on one broker do not take over each other's connection. */
  clientId?: string;
}

export interface RunningDataPlaneEndpoint {
  /** What the SDK's `endpoint` option takes, e.g. `http://127.0.0.1:43121`. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** AWS IoT's limit on a message's payload. */
const MAX_PAYLOAD_BYTES = 128 * 1024;
/** AWS IoT's limit on a topic name's length in bytes. */
const MAX_TOPIC_BYTES = 256;
/** MQTT 5 PUBACK reason code: the publish was accepted but nobody subscribes; still a success. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
const NOT_AUTHORIZED = 0x87;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new ApiError(400, 'InvalidRequestException', message);

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PAYLOAD_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => {
      if (tooLarge) {
        reject(
          new ApiError(
            413,
            'RequestEntityTooLargeException',
            `The payload exceeds the maximum size of ${MAX_PAYLOAD_BYTES} bytes`,
          ),
        );
      } else {
        resolve(Buffer.concat(chunks));
      }
    });
    request.on('error', reject);
  });
}

/** The SDK sends user properties as base64 JSON: `[{"key": "value"}, ...]`. */
function userProperties(header: string): Record<string, string | string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw invalid('x-amz-mqtt5-user-properties is not base64-encoded JSON');
  }
  if (!Array.isArray(parsed)) throw invalid('userProperties must be a JSON array of objects');
  const properties: Record<string, string | string[]> = {};
  for (const entry of parsed) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw invalid('userProperties must be a JSON array of objects');
    }
    for (const [key, value] of Object.entries(entry)) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      const existing = properties[key];
      if (existing === undefined) properties[key] = text;
      else properties[key] = [existing, text].flat();
    }
  }
  return properties;
}

/** The MQTT publish an HTTP request asks for, or the InvalidRequestException AWS would answer. */
function publishRequest(request: IncomingMessage): {
  topic: string;
  options: IClientPublishOptions;
} {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const match = /^\/topics\/(.+)$/.exec(url.pathname);
  if (!match) {
    throw new ApiError(404, 'ResourceNotFoundException', `No such resource: ${url.pathname}`);
  }
  if (request.method !== 'POST') {
    throw new ApiError(
      405,
      'MethodNotAllowedException',
      `${request.method} is not allowed on /topics`,
    );
  }
  let topic: string;
  try {
    topic = decodeURIComponent(match[1] as string);
  } catch {
    throw invalid('The topic is not correctly URL-encoded');
  }
  if (topic.includes('+') || topic.includes('#')) {
    throw invalid(`Topic ${topic} is not valid for publishing: it contains a wildcard`);
  }
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw invalid(`The topic exceeds the maximum length of ${MAX_TOPIC_BYTES} bytes`);
  }
  const query = url.searchParams;
  const qosText = query.get('qos') ?? '0';
  if (qosText !== '0' && qosText !== '1') throw invalid(`qos must be 0 or 1, not ${qosText}`);
  const retainText = query.get('retain') ?? 'false';
  if (retainText !== 'true' && retainText !== 'false') {
    throw invalid(`retain must be true or false, not ${retainText}`);
  }

  const properties: NonNullable<IClientPublishOptions['properties']> = {};
  const contentType = query.get('contentType');
  if (contentType) properties.contentType = contentType;
  const responseTopic = query.get('responseTopic');
  if (responseTopic) properties.responseTopic = responseTopic;
  const messageExpiry = query.get('messageExpiry');
  if (messageExpiry !== null) {
    const seconds = Number(messageExpiry);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffff_ffff) {
      throw invalid(`messageExpiry must be a whole number of seconds, not ${messageExpiry}`);
    }
    properties.messageExpiryInterval = seconds;
  }
  const correlationData = request.headers['x-amz-mqtt5-correlation-data'];
  if (typeof correlationData === 'string') {
    properties.correlationData = Buffer.from(correlationData, 'base64');
  }
  const format = request.headers['x-amz-mqtt5-payload-format-indicator'];
  if (typeof format === 'string') {
    if (format !== 'UNSPECIFIED_BYTES' && format !== 'UTF8_DATA') {
      throw invalid(`payloadFormatIndicator must be UNSPECIFIED_BYTES or UTF8_DATA, not ${format}`);
    }
    properties.payloadFormatIndicator = format === 'UTF8_DATA';
  }
  const user = request.headers['x-amz-mqtt5-user-properties'];
  if (typeof user === 'string') properties.userProperties = userProperties(user);

  return {
    topic,
    options: {
      qos: qosText === '1' ? 1 : 0,
      retain: retainText === 'true',
      ...(Object.keys(properties).length > 0 ? { properties } : {}),
    },
  };
}

function send(response: ServerResponse, status: number, body: unknown, type?: string): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-requestid': randomUUID(),
    ...(type ? { 'x-amzn-errortype': type } : {}),
  });
  response.end(JSON.stringify(body));
}

async function publish(
  client: MqttClient,
  topic: string,
  payload: Buffer,
  options: IClientPublishOptions,
): Promise<void> {
  // With the broker away, fail now rather than queue: the caller (a function handling an
  // API request) must learn that the command did not go out.
  if (!client.connected) {
    throw new ApiError(503, 'ServiceUnavailableException', 'The MQTT broker is not reachable');
  }
  try {
    await Promise.race([
      client.publishAsync(topic, payload, options),
      new Promise((_, reject) =>
        setTimeout(
          () =>
            reject(
              new ApiError(
                503,
                'ServiceUnavailableException',
                'The MQTT broker did not acknowledge the message',
              ),
            ),
          10_000,
        ).unref(),
      ),
    ]);
  } catch (error) {
    if (error instanceof ApiError) throw error;
    const code = (error as { code?: number }).code;
    if (code === NO_MATCHING_SUBSCRIBERS) return;
    if (code === NOT_AUTHORIZED) {
      throw new ApiError(401, 'UnauthorizedException', `Not authorized to publish to ${topic}`);
    }
    throw new ApiError(
      500,
      'InternalFailureException',
      `Publish failed: ${(error as Error).message}`,
    );
  }
}

export async function startDataPlaneEndpoint(
  options: DataPlaneEndpointOptions,
): Promise<RunningDataPlaneEndpoint> {
  const { log } = options;
  const client = mqtt.connect(options.mqtt.url, {
    username: options.mqtt.username,
    password: options.mqtt.password,
    clientId: options.clientId ?? `easysmart-data-plane-${process.pid}-${randomUUID().slice(0, 8)}`,
    protocolVersion: 5,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      client.off('connect', onConnect);
      client.end(true);
      reject(
        new Error(
          `IoT data-plane endpoint cannot connect to ${options.mqtt.url}: ${error.message}`,
        ),
      );
    };
    const onConnect = () => {
      client.off('error', onError);
      resolve();
    };
    client.once('error', onError);
    client.once('connect', onConnect);
  });
  client.on('error', (error) => log.warn('IoT data-plane endpoint MQTT error', { error }));
  client.on('offline', () => log.warn('IoT data-plane endpoint lost its broker connection'));

  const server = createServer((request, response) => {
    void (async () => {
      try {
        const { topic, options: publishOptions } = publishRequest(request);
        const payload = await readBody(request);
        await publish(client, topic, payload, publishOptions);
        log.debug('published through the IoT data-plane endpoint', {
          topic,
          qos: publishOptions.qos,
          bytes: payload.length,
        });
        send(response, 200, {});
      } catch (error) {
        if (error instanceof ApiError) {
          send(response, error.status, { message: error.message }, error.type);
        } else {
          log.error('IoT data-plane endpoint failed', { error });
          send(response, 500, { message: 'Internal failure' }, 'InternalFailureException');
        }
        // A request refused before its body was read still has to be drained.
        request.resume();
      }
    })();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await client.endAsync(true);
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.endAsync();
    },
  };
}
