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

/**
 * Where this bundle's copy of the WASM backend finds its binaries; a composition calls it when
 * it is made. TensorFlow.js keeps one backend registry per process, and the local stack runs
 * every function in one process: the WASM backend registered first (by whichever function's
 * bundle loaded first) is the one every function then initialises, with its own copy's paths.
 * Setting them only when training started left a bundle that never trained (the scheduled
 * maintenance training with nothing due) pointing at a folder without the binaries.
 */
export function setTfWasmPaths(wasmPaths: string): void {
  if (wasmPaths === pathsSet) return;
  setWasmPaths(wasmPaths.endsWith('/') ? wasmPaths : `${wasmPaths}/`);
  pathsSet = wasmPaths;
}

export async function useTfBackend(options: TfRuntimeOptions = {}): Promise<typeof tf> {
  const backend = options.backend ?? 'wasm';
  if (options.wasmPaths !== undefined) setTfWasmPaths(options.wasmPaths);
  if (tf.getBackend() !== backend) {
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error(`TensorFlow.js backend "${backend}" could not be initialised`);
  }
  await tf.ready();
  return tf;
}
