/**
 * The edge model file: what a device needs to run the advanced detector on its own readings
 * (the entity's trained network, the detector's settings and its streaming statistics), in
 * one little-endian binary a microcontroller parses without a JSON library or a heap of
 * its own. `firmware/core/edge_model.cpp` reads exactly this layout; change both together
 * and bump `EDGE_FORMAT`.
 *
 * Layout: a 16-byte header (magic "ESAM", format u16, flags u16, body length u32, CRC-32 of
 * the body u32), then the body: the identity (model version, entity id, the time of the last
 * reading the statistics include), the settings, the network (each layer's weights float32,
 * or int16/int8 with one float32 scale per output unit), and the statistics (float64, so the
 * device continues them exactly where the platform left off).
 */

import type { AdvancedConfig, AdvancedState } from '../../ml/domain/advanced-detector.ts';
import type { BasicConfig, BasicState } from '../../ml/domain/basic-detector.ts';
import type { EwmState, TailConfig, TailState } from '../../ml/domain/stats.ts';

export const EDGE_MAGIC = 'ESAM';
export const EDGE_FORMAT = 1;
export const EDGE_HEADER_BYTES = 16;

/**
 * What the reference device (an ESP32) accepts: the device refuses anything larger, and the
 * platform refuses to export it. `firmware/core/edge_model.hpp` has the same figures.
 */
export const EDGE_LIMITS = {
  maxBytes: 16_384,
  maxLayers: 4,
  maxUnits: 64,
  maxWindowSize: 64,
  maxStatWindow: 128,
  maxDailyBins: 288,
  maxRecent: 128,
  maxVersionBytes: 96,
  maxEntityIdBytes: 128,
} as const;

export type WeightEncoding = 'f32' | 'i16' | 'i8';
const ENCODING_CODE: Record<WeightEncoding, number> = { f32: 0, i16: 1, i8: 2 };
const ENCODINGS: WeightEncoding[] = ['f32', 'i16', 'i8'];
export type Activation = 'relu' | 'tanh' | 'linear';
const ACTIVATIONS: Activation[] = ['relu', 'tanh', 'linear'];

export interface EdgeLayer {
  inputs: number;
  units: number;
  activation: Activation;
  encoding: WeightEncoding;
  /** Per output unit (quantised encodings only): weight = scale[j] * q. */
  scales: Float32Array | null;
  /** [inputs x units] row-major, as tf.js: float32 values or the quantised integers. */
  kernel: Float32Array | Int16Array | Int8Array;
  bias: Float32Array;
}

export interface EdgeNetwork {
  windowSize: number;
  normalisation: { mean: number; std: number };
  residual: { mean: number; std: number };
  threshold: number;
  tailExcess: number;
  layers: EdgeLayer[];
}

export interface EdgeModel {
  /** The platform's model version (the trained model's content-derived id). */
  version: string;
  entityId: string;
  /** The statistics include every reading up to this time (epoch ms); -1 when none yet. */
  lastTimeMs: number;
  config: AdvancedConfig;
  network: EdgeNetwork;
  state: AdvancedState;
}

/** The file cannot be used: `reason` is the device's word for it too. */
export class EdgeFormatError extends Error {
  override readonly name = 'EdgeFormatError';
  constructor(
    readonly reason:
      | 'bad_magic'
      | 'unsupported_format'
      | 'checksum_mismatch'
      | 'truncated'
      | 'too_large'
      | 'unsupported_model'
      | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, the zlib one): detects corruption in transit and in storage. Who may
// publish a model to a device is the broker's access policy's business, not the checksum's.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function crc32Hex(bytes: Uint8Array): string {
  return crc32(bytes).toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------

class Writer {
  #buffer = new Uint8Array(4096);
  #view = new DataView(this.#buffer.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buffer.length) return;
    const bigger = new Uint8Array(Math.max(this.#buffer.length * 2, this.length + n));
    bigger.set(this.#buffer);
    this.#buffer = bigger;
    this.#view = new DataView(bigger.buffer);
  }
  u8(v: number): void {
    this.#room(1);
    this.#view.setUint8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.#room(2);
    this.#view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.#room(4);
    this.#view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  i16(v: number): void {
    this.#room(2);
    this.#view.setInt16(this.length, v, true);
    this.length += 2;
  }
  i8(v: number): void {
    this.#room(1);
    this.#view.setInt8(this.length, v);
    this.length += 1;
  }
  text(s: string, max: number): void {
    const bytes = new TextEncoder().encode(s);
    if (bytes.length > max) throw new EdgeFormatError('too_large', `text over ${max} bytes`);
    this.u8(bytes.length);
    this.#room(bytes.length);
    this.#buffer.set(bytes, this.length);
    this.length += bytes.length;
  }
  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.length);
  }
}

class Reader {
  readonly #view: DataView;
  offset = 0;
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  #need(n: number): void {
    if (this.offset + n > this.bytes.length) {
      throw new EdgeFormatError('truncated', 'edge model ends early');
    }
  }
  u8(): number {
    this.#need(1);
    return this.#view.getUint8(this.offset++);
  }
  u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f32(): number {
    this.#need(4);
    const v = this.#view.getFloat32(this.offset, true);
    this.offset += 4;
    return v;
  }
  f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.offset, true);
    this.offset += 8;
    if (!Number.isFinite(v)) throw new EdgeFormatError('malformed', 'edge model number not finite');
    return v;
  }
  i16(): number {
    this.#need(2);
    const v = this.#view.getInt16(this.offset, true);
    this.offset += 2;
    return v;
  }
  i8(): number {
    this.#need(1);
    return this.#view.getInt8(this.offset++);
  }
  text(max: number): string {
    const n = this.u8();
    if (n > max) throw new EdgeFormatError('malformed', 'edge model text too long');
    this.#need(n);
    const s = new TextDecoder('utf-8', { fatal: true }).decode(
      this.bytes.subarray(this.offset, this.offset + n),
    );
    this.offset += n;
    return s;
  }
}

function malformed(what: string): never {
  throw new EdgeFormatError('malformed', `edge model ${what}`);
}

function checkCount(n: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(n) || n < min || n > max) malformed(`${what} ${n} outside ${min}..${max}`);
  return n;
}

/**
 * As the device checks: every float32 finite, and every weight a quantised layer stands for,
 * `float(scale * q)`, too (a finite scale times the largest integer can overflow a float).
 */
function allWeightsFinite(
  kernel: Float32Array | Int16Array | Int8Array,
  scales: Float32Array | null,
  bias: Float32Array,
  units: number,
): boolean {
  if (!bias.every(Number.isFinite)) return false;
  if (scales === null) return (kernel as Float32Array).every(Number.isFinite);
  if (!scales.every(Number.isFinite)) return false;
  for (let k = 0; k < kernel.length; k++) {
    const w = Math.fround((scales[k % units] as number) * (kernel[k] as number));
    if (!Number.isFinite(w)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Settings: a fixed list of numbers, in this order, on both sides.

function tailConfigValues(t: TailConfig): number[] {
  return [t.quantile, t.step, t.excessAlpha, t.minExcess, t.initialThreshold, t.initialExcess];
}

function tailConfigFrom(v: number[]): TailConfig {
  const [quantile, step, excessAlpha, minExcess, initialThreshold, initialExcess] = v as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { quantile, step, excessAlpha, minExcess, initialThreshold, initialExcess };
}

const CONFIG_VALUES = 29;

function configValues(c: AdvancedConfig): number[] {
  const b = c.basic;
  return [
    b.warmup,
    b.window,
    b.fastAlpha,
    b.slowAlpha,
    b.volatilityAlpha,
    ...tailConfigValues(b.tail),
    b.surpriseScale,
    b.alarmScore,
    b.refractory,
    b.refractoryDamping,
    b.dailyBins,
    b.dailyAlpha,
    b.minRepeatRate,
    ...tailConfigValues(c.tail),
    c.shiftAlpha,
    c.modelWeight,
    c.recentCapacity,
    c.rangeMargin,
    c.rangeSurprise,
  ];
}

function configFrom(v: number[]): AdvancedConfig {
  const at = (i: number) => v[i] as number;
  const basic: BasicConfig = {
    warmup: checkCount(at(0), 0, 1e6, 'warmup'),
    window: checkCount(at(1), 1, EDGE_LIMITS.maxStatWindow, 'statistics window'),
    fastAlpha: at(2),
    slowAlpha: at(3),
    volatilityAlpha: at(4),
    tail: tailConfigFrom(v.slice(5, 11)),
    surpriseScale: at(11),
    alarmScore: at(12),
    refractory: checkCount(at(13), 0, 1e6, 'refractory'),
    refractoryDamping: at(14),
    dailyBins: checkCount(at(15), 1, EDGE_LIMITS.maxDailyBins, 'daily bins'),
    dailyAlpha: at(16),
    minRepeatRate: at(17),
  };
  if (!(basic.surpriseScale > 0) || !(basic.tail.quantile > 0 && basic.tail.quantile < 1)) {
    malformed('settings out of range');
  }
  return {
    basic,
    tail: tailConfigFrom(v.slice(18, 24)),
    shiftAlpha: at(24),
    modelWeight: at(25),
    recentCapacity: checkCount(at(26), 1, EDGE_LIMITS.maxRecent, 'recent capacity'),
    rangeMargin: at(27),
    rangeSurprise: at(28),
    // A device judges steps against the typical step only (its state has no daily steps)
    // and has no measuring range.
    seasonalSteps: false,
    measuringRange: null,
  };
}

// ---------------------------------------------------------------------------------------
// Statistics.

function writeEwm(w: Writer, e: EwmState): void {
  w.f64(e.mean);
  w.f64(e.variance);
  w.f64(e.count);
}
function readEwm(r: Reader): EwmState {
  return { mean: r.f64(), variance: r.f64(), count: r.f64() };
}
function writeTail(w: Writer, t: TailState): void {
  w.f64(t.threshold);
  w.f64(t.meanExcess);
  w.f64(t.count);
}
function readTail(r: Reader): TailState {
  return { threshold: r.f64(), meanExcess: r.f64(), count: r.f64() };
}

const BASIC_TAILS = [
  'spike',
  'shift',
  'change',
  'volatility',
  'seasonal',
  'seasonalShift',
] as const;

function writeState(w: Writer, s: AdvancedState, config: AdvancedConfig): void {
  const b = s.basic;
  if (b.daily.length !== config.basic.dailyBins) malformed('daily profile does not match its bins');
  if (b.window.values.length > config.basic.window) malformed('statistics window too long');
  w.f64(b.count);
  w.u8(b.last === null ? 0 : 1);
  w.f64(b.last ?? 0);
  w.u16(b.window.values.length);
  w.u16(b.window.next);
  for (const v of b.window.values) w.f64(v);
  for (const e of [b.fast, b.slow, b.diff, b.volFast, b.volSlow, b.repeatRate]) writeEwm(w, e);
  w.f64(b.run);
  for (const e of b.daily) writeEwm(w, e);
  writeEwm(w, b.dailyResidual);
  w.f64(b.dailyResidualFast);
  for (const key of BASIC_TAILS) writeTail(w, b.tails[key]);
  w.f64(b.quiet);
  w.u16(s.recent.length);
  for (const v of s.recent) w.f64(v);
  writeTail(w, s.forecastTail);
  writeTail(w, s.shiftTail);
  w.f64(s.residualFast);
  w.f64(s.range.min);
  w.f64(s.range.max);
  w.f64(s.range.count);
}

function readState(r: Reader, config: AdvancedConfig, version: string): AdvancedState {
  const count = r.f64();
  const hasLast = r.u8();
  const last = r.f64();
  const windowLength = checkCount(r.u16(), 0, config.basic.window, 'statistics window');
  const next = checkCount(r.u16(), 0, Math.max(0, config.basic.window - 1), 'window index');
  const values: number[] = [];
  for (let i = 0; i < windowLength; i++) values.push(r.f64());
  const [fast, slow, diff, volFast, volSlow, repeatRate] = Array.from({ length: 6 }, () =>
    readEwm(r),
  ) as [EwmState, EwmState, EwmState, EwmState, EwmState, EwmState];
  const run = r.f64();
  const daily = Array.from({ length: config.basic.dailyBins }, () => readEwm(r));
  const dailyResidual = readEwm(r);
  const dailyResidualFast = r.f64();
  const tails = {} as BasicState['tails'];
  for (const key of BASIC_TAILS) tails[key] = readTail(r);
  const quiet = r.f64();
  const recentLength = checkCount(r.u16(), 0, config.recentCapacity, 'recent readings');
  const recent: number[] = [];
  for (let i = 0; i < recentLength; i++) recent.push(r.f64());
  const forecastTail = readTail(r);
  const shiftTail = readTail(r);
  const residualFast = r.f64();
  const range = { min: r.f64(), max: r.f64(), count: r.f64() };
  return {
    basic: {
      count,
      last: hasLast ? last : null,
      window: { values, next },
      fast,
      slow,
      diff,
      volFast,
      volSlow,
      repeatRate,
      run,
      daily,
      dailyResidual,
      dailyResidualFast,
      tails,
      quiet,
    },
    recent,
    modelVersion: version,
    forecastTail,
    shiftTail,
    residualFast,
    range,
  };
}

// ---------------------------------------------------------------------------------------

export function encodeEdgeModel(model: EdgeModel): Uint8Array {
  const body = new Writer();
  const n = model.network;
  body.text(model.version, EDGE_LIMITS.maxVersionBytes);
  body.text(model.entityId, EDGE_LIMITS.maxEntityIdBytes);
  body.f64(model.lastTimeMs);
  const config = configValues(model.config);
  body.u8(config.length);
  for (const v of config) body.f64(v);
  body.u16(n.windowSize);
  for (const v of [
    n.normalisation.mean,
    n.normalisation.std,
    n.residual.mean,
    n.residual.std,
    n.threshold,
    n.tailExcess,
  ]) {
    body.f64(v);
  }
  body.u8(n.layers.length);
  for (const layer of n.layers) {
    body.u16(layer.units);
    body.u8(ACTIVATIONS.indexOf(layer.activation));
    body.u8(ENCODING_CODE[layer.encoding]);
    if (layer.encoding !== 'f32') for (const s of layer.scales as Float32Array) body.f32(s);
    for (const v of layer.kernel) {
      if (layer.encoding === 'f32') body.f32(v);
      else if (layer.encoding === 'i16') body.i16(v);
      else body.i8(v);
    }
    for (const v of layer.bias) body.f32(v);
  }
  writeState(body, model.state, model.config);

  const bodyBytes = body.bytes();
  const out = new Uint8Array(EDGE_HEADER_BYTES + bodyBytes.length);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(EDGE_MAGIC), 0);
  view.setUint16(4, EDGE_FORMAT, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, bodyBytes.length, true);
  view.setUint32(12, crc32(bodyBytes), true);
  out.set(bodyBytes, EDGE_HEADER_BYTES);
  if (out.length > EDGE_LIMITS.maxBytes) {
    throw new EdgeFormatError(
      'too_large',
      `edge model is ${out.length} bytes; the device takes at most ${EDGE_LIMITS.maxBytes}`,
    );
  }
  // What the device would refuse must never leave the platform.
  decodeEdgeModel(out);
  return out;
}

export function decodeEdgeModel(bytes: Uint8Array): EdgeModel {
  if (bytes.length > EDGE_LIMITS.maxBytes) {
    throw new EdgeFormatError('too_large', `edge model over ${EDGE_LIMITS.maxBytes} bytes`);
  }
  if (bytes.length < EDGE_HEADER_BYTES) throw new EdgeFormatError('truncated', 'no header');
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== EDGE_MAGIC) {
    throw new EdgeFormatError('bad_magic', 'not an edge model');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint16(4, true);
  if (format !== EDGE_FORMAT) {
    throw new EdgeFormatError('unsupported_format', `edge model format ${format}`);
  }
  const length = view.getUint32(8, true);
  if (length !== bytes.length - EDGE_HEADER_BYTES) {
    throw new EdgeFormatError('truncated', 'edge model length does not match its header');
  }
  const body = bytes.subarray(EDGE_HEADER_BYTES);
  if (crc32(body) !== view.getUint32(12, true)) {
    throw new EdgeFormatError('checksum_mismatch', 'edge model checksum does not match');
  }
  const r = new Reader(body);
  const version = r.text(EDGE_LIMITS.maxVersionBytes);
  const entityId = r.text(EDGE_LIMITS.maxEntityIdBytes);
  if (version.length === 0 || entityId.length === 0) malformed('has no version or entity');
  const lastTimeMs = r.f64();
  if (r.u8() !== CONFIG_VALUES) malformed('settings count');
  const config = configFrom(Array.from({ length: CONFIG_VALUES }, () => r.f64()));
  const windowSize = checkCount(r.u16(), 2, EDGE_LIMITS.maxWindowSize, 'window size');
  if (windowSize > config.recentCapacity) malformed('window longer than the recent readings');
  const [nm, ns, rm, rs, threshold, tailExcess] = Array.from({ length: 6 }, () => r.f64()) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!(ns > 0) || !(rs > 0)) malformed('scales must be positive');
  const layerCount = checkCount(r.u8(), 1, EDGE_LIMITS.maxLayers, 'layer count');
  const layers: EdgeLayer[] = [];
  let inputs = windowSize + 1;
  for (let l = 0; l < layerCount; l++) {
    const units = checkCount(r.u16(), 1, EDGE_LIMITS.maxUnits, 'units');
    const activation = ACTIVATIONS[r.u8()] ?? malformed('activation');
    const encoding = ENCODINGS[r.u8()] ?? malformed('weight encoding');
    const scales = encoding === 'f32' ? null : Float32Array.from({ length: units }, () => r.f32());
    const size = inputs * units;
    const kernel =
      encoding === 'f32'
        ? Float32Array.from({ length: size }, () => r.f32())
        : encoding === 'i16'
          ? Int16Array.from({ length: size }, () => r.i16())
          : Int8Array.from({ length: size }, () => r.i8());
    const bias = Float32Array.from({ length: units }, () => r.f32());
    if (!allWeightsFinite(kernel, scales, bias, units)) malformed('weights not finite');
    layers.push({ inputs, units, activation, encoding, scales, kernel, bias });
    inputs = units;
  }
  if (inputs !== 1) malformed('network must end in one output');
  const state = readState(r, config, version);
  if (r.offset !== body.length) malformed('has trailing bytes');
  return {
    version,
    entityId,
    lastTimeMs,
    config,
    network: {
      windowSize,
      normalisation: { mean: nm, std: ns },
      residual: { mean: rm, std: rs },
      threshold,
      tailExcess,
      layers,
    },
    state,
  };
}
