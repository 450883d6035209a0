/**
 * Why a message or one of its values was not turned into a sample. The reason is a metric label
 * (`lineguard_mqtt_dropped_total{reason}`), so the set is small and fixed.
 */
export type DropReason =
  /** Payload larger than maxPayloadBytes. */
  | 'too_large'
  /** Not JSON (json sources). */
  | 'not_json'
  /** Not a Sparkplug B protobuf payload, or a topic that is not spBv1.0/<group>/<type>/<node>[/<device>]. */
  | 'decode_error'
  /** The JSON pointer of a value does not resolve. */
  | 'missing_field'
  /** The value is not of the configured type (an object, an array, null, a non-numeric string for type number...). */
  | 'wrong_type'
  /** The configured timestamp field is missing or not a valid time. */
  | 'bad_timestamp'
  /** The tag template needs a topic level the topic does not have. */
  | 'bad_topic'
  /** A message on a topic no configured filter matches (left over in a persistent session). */
  | 'unsubscribed_topic'
  /** Sparkplug data from an edge node or device whose birth certificate has not been received. */
  | 'no_birth'
  /** Sparkplug data naming an alias its birth certificate did not declare. */
  | 'unknown_alias'
  /** A Sparkplug metric type the gateway does not turn into samples (DataSet, Template, Bytes, File, arrays...). */
  | 'unsupported_type'
  /** A Sparkplug metric flagged is_null. */
  | 'null_value'
  /** A Sparkplug metric flagged is_transient (the spec says hosts must not historize it). */
  | 'transient'
  /** A new tag beyond the source's tag limit (MAX_TAGS_PER_SOURCE), or a birth certificate with more metrics. */
  | 'too_many_tags'
  /** A tag name longer than MAX_TAG_NAME_LENGTH. */
  | 'tag_name_too_long'
  /** A Sparkplug birth of an edge node or device beyond the number of sessions a source keeps. */
  | 'too_many_sessions';

export interface IngestProblem {
  reason: DropReason;
  /** The whole message was dropped, or one value of it. */
  scope: 'message' | 'value';
  /** One short sentence for the log line. */
  detail: string;
}
