/**
 * Loaded by the local function host (serverless-offline) before it starts (`node --import`):
 * a batch of Kinesis records the rules emulator sends in its compact form
 * (local/iot-rules/kinesis-batch.mjs) becomes the whole Kinesis event before the function
 * runs, so the handler gets exactly the event Lambda would give it.
 *
 * serverless-offline@13 parses an Invoke request's body and hands the result to the
 * function's `setEvent`; nothing else sits between the two. The patch is on that method of
 * the module serverless-offline itself loads (the same file, so the same class), and it
 * fails the start loudly if a newer serverless-offline no longer has it.
 */
import { expandKinesisBatch, isLocalKinesisBatch } from '../iot-rules/kinesis-batch.mjs';

const offline = import.meta.resolve('serverless-offline');
const { default: LambdaFunction } = await import(new URL('./lambda/LambdaFunction.js', offline));
const setEvent = LambdaFunction?.prototype?.setEvent;
if (typeof setEvent !== 'function') {
  throw new Error(
    `serverless-offline (${offline}) has no LambdaFunction.setEvent: the local Kinesis batches cannot reach the functions`,
  );
}
LambdaFunction.prototype.setEvent = function setKinesisEvent(event) {
  return setEvent.call(this, isLocalKinesisBatch(event) ? expandKinesisBatch(event) : event);
};
