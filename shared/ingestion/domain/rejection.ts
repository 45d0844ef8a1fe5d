/** Why a message was refused: counted per reason in `ingestion_rejections`. */
export type RejectionReason =
  | 'invalid_event'
  | 'unknown_topic'
  | 'payload_too_large'
  | 'malformed_json'
  | 'invalid_payload'
  | 'client_mismatch'
  | 'unknown_device'
  | 'unknown_entity'
  | 'reserved_entity'
  | 'wrong_value_type'
  | 'value_out_of_range'
  | 'invalid_timestamp'
  | 'timestamp_in_future'
  | 'timestamp_too_old'
  | 'beyond_retention'
  | 'refused_by_database'
  | 'entity_limit_reached';

/**
 * A message that is wrong in itself: the ingestion path's equivalent of a 4xx answer. It
 * rejects that message alone, is counted by reason, and never fails the batch.
 */
export class Rejection extends Error {
  override readonly name = 'Rejection';
  constructor(
    readonly reason: RejectionReason,
    detail: string,
  ) {
    super(detail);
  }
}
