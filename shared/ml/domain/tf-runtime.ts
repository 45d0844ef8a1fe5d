import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/**
 * TensorFlow.js backend selection. WASM is the default because tfjs-node cannot ship in a
 * Lambda bundle; a deployment that has tfjs-node installed imports it and passes
 * `backend: 'tensorflow'`. Importing the WASM package registers the backend, it does not
 * load the binary until it is selected.
 */
export interface TfRuntimeOptions {
  /** Registered backend name: 'wasm' (default), 'cpu', or 'tensorflow' with tfjs-node. */
  backend?: string;
  /**
   * Folder or URL prefix holding the tfjs-backend-wasm `.wasm` files, for bundles that do
   * not keep node_modules (a Lambda zip). Node finds them in node_modules by itself.
   */
  wasmPaths?: string;
}

let pathsSet: string | undefined;

export async function useTfBackend(options: TfRuntimeOptions = {}): Promise<typeof tf> {
  const backend = options.backend ?? 'wasm';
  if (options.wasmPaths !== undefined && options.wasmPaths !== pathsSet) {
    const prefix = options.wasmPaths.endsWith('/') ? options.wasmPaths : `${options.wasmPaths}/`;
    setWasmPaths(prefix);
    pathsSet = options.wasmPaths;
  }
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error(`TensorFlow.js backend "${backend}" could not be initialised`);
  }
  await tf.ready();
  return tf;
}
