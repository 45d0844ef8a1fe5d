import { logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { setTfWasmPaths } from '../ml/domain/tf-runtime.ts';
import {
  machineHistory,
  maintenanceService,
  maintenanceStore,
  rulModelStore,
} from './composition.ts';
import { FleetTrainer } from './domain/fleet-trainer.ts';
import { trainRulModel } from './domain/rul-training.ts';

/** Fleet model training: the one function that loads TensorFlow.js for predictive maintenance. */
export const fleetTrainer = once(() => {
  const { ml } = config();
  if (ml.tfjsWasmPaths) setTfWasmPaths(ml.tfjsWasmPaths);
  return new FleetTrainer({
    store: maintenanceStore(),
    history: machineHistory(),
    models: rulModelStore(),
    service: maintenanceService(),
    train: (data) =>
      trainRulModel(data, {
        backend: ml.tfjsBackend,
        ...(ml.tfjsWasmPaths ? { wasmPaths: ml.tfjsWasmPaths } : {}),
      }),
    logger: logger().child({ component: 'maintenance-training' }),
  });
});
