/**
 * The model families a tenant with custom models may choose for an entity, and their
 * settings. Every family is a forecaster the platform trains with TensorFlow.js and scores
 * with the same TypeScript forward pass, so any choice runs in the ingestion path and passes
 * the same quality gate.
 */

export const MODEL_FAMILIES = ['dense', 'linear'] as const;
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** Hidden layers of the dense family by size; `medium` is the platform's default model. */
export const ARCHITECTURE_SIZES = {
  small: [8],
  medium: [16, 8],
  large: [32, 16],
} as const;
export type ArchitectureSize = keyof typeof ARCHITECTURE_SIZES;

export const MIN_WINDOW = 4;
export const MAX_WINDOW = 128;

/** At most this many other entities of the device feed one model, each with at most MAX_CO_WINDOW values. */
export const MAX_CO_ENTITIES = 4;
export const MAX_CO_WINDOW = 32;
/** Aligned values of each other entity a model reads unless told otherwise. */
export const DEFAULT_CO_WINDOW = 4;

export interface ModelSettings {
  /** `dense`: a ReLU network; `linear`: an autoregressive linear forecast (no hidden layer). */
  family: ModelFamily;
  /** Readings before the forecast one that the model sees. */
  windowSize: number;
  /** Width and depth of the dense family (the linear family has none). */
  size: ArchitectureSize;
  /**
   * Other numeric entities of the same device the model also reads (absent or empty: none),
   * each as its values aligned with the entity's last `coWindow` readings.
   */
  coEntities?: string[];
  coWindow?: number;
}

export const DEFAULT_SETTINGS: ModelSettings = { family: 'dense', windowSize: 24, size: 'medium' };

/** Stored settings read back, or null when they are not settings this code knows. */
export function parseSettings(json: unknown): ModelSettings | null {
  if (typeof json !== 'object' || json === null) return null;
  const { family, windowSize, size } = json as Record<string, unknown>;
  if (!(MODEL_FAMILIES as readonly unknown[]).includes(family)) return null;
  if (!Number.isInteger(windowSize) || (windowSize as number) < MIN_WINDOW) return null;
  if ((windowSize as number) > MAX_WINDOW || typeof size !== 'string') return null;
  if (!(size in ARCHITECTURE_SIZES)) return null;
  const { coEntities, coWindow } = json as Record<string, unknown>;
  if (coEntities === undefined || (Array.isArray(coEntities) && coEntities.length === 0)) {
    return { family, windowSize, size } as ModelSettings;
  }
  if (!Array.isArray(coEntities) || coEntities.length > MAX_CO_ENTITIES) return null;
  if (!coEntities.every((id) => typeof id === 'string')) return null;
  const window = coWindow ?? DEFAULT_CO_WINDOW;
  if (!Number.isInteger(window) || (window as number) < 1 || (window as number) > MAX_CO_WINDOW) {
    return null;
  }
  return { family, windowSize, size, coEntities, coWindow: window } as ModelSettings;
}

/** The training options that build a model of these settings (the other entities' readings aside). */
export function trainingShape(settings: ModelSettings): {
  windowSize: number;
  hidden: number[];
  coWindow?: number;
} {
  return {
    windowSize: settings.windowSize,
    hidden: settings.family === 'linear' ? [] : [...ARCHITECTURE_SIZES[settings.size]],
    ...(settings.coEntities?.length ? { coWindow: settings.coWindow ?? DEFAULT_CO_WINDOW } : {}),
  };
}

/**
 * Largest weight payload of an uploaded model (float32 bytes, 131,072 weights): it runs on
 * every reading of its entity in the ingestion path.
 */
export const MAX_UPLOAD_WEIGHT_BYTES = 512 * 1024;
