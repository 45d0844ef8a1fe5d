/** What a device payload may hold: shared by the payload schemas and the telemetry scanner. */

/** AWS IoT's own limit; anything larger cannot be a legitimate message. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
export const MAX_TEXT_VALUE_LENGTH = 1024;
export const MAX_TELEMETRY_READINGS = 5000;
/** Items of one telemetry message (an array of `{timestamp, values}`). */
export const MAX_TELEMETRY_ITEMS = 1000;
/** Epoch seconds; anything before 2000 is an unsynchronised clock (uptime), not a date. */
export const MIN_TIMESTAMP_S = 946_684_800;
export const MAX_TIMESTAMP_S = 32_503_680_000;
