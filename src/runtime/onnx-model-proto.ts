/**
 * Reads the header fields of an ONNX ModelProto (onnx/onnx.proto3) straight from the protobuf wire format.
 *
 * onnxruntime-node exposes input/output names, types and shapes but not the model's `metadata_props`, where the
 * training scripts store the Lineguard metadata (normalisation, labels, version). The few fields needed sit at the
 * top level of the message, so a small reader that skips the graph is enough and needs no protobuf dependency.
 */

/** The top-level ModelProto fields Lineguard reports. */
export interface OnnxModelHeader {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  /** Operator sets the model imports (domain '' is the default `ai.onnx`). */
  opsets: Array<{ domain: string; version: number }>;
  /** metadata_props as key → value. */
  metadata: Record<string, string>;
  /** The graph's inputs (initializers excluded) and outputs, as declared: what check-config compares with the config. */
  inputs: GraphValue[];
  outputs: GraphValue[];
}

/** A graph input or output: name, element type (onnx TensorProto.DataType name, e.g. `float`) and shape. */
export interface GraphValue {
  name: string;
  /** `float`, `double`, `int64`, ... or `unknown` for a non-tensor value. */
  type: string;
  /** Dimensions: numbers, symbolic names, or `?` for an unknown one. Undefined: no shape declared. */
  shape: Array<number | string> | undefined;
}

/** onnx.proto3 TensorProto.DataType. */
const ELEM_TYPES = ['undefined', 'float', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'double', 'uint32', 'uint64', 'complex64', 'complex128', 'bfloat16'];

/** The bytes are not a well-formed ONNX ModelProto. */
export class OnnxFormatError extends Error {
  override readonly name = 'OnnxFormatError';
}

// ModelProto field numbers (onnx.proto3).
const F_IR_VERSION = 1;
const F_OPSET_IMPORT = 8;
const F_PRODUCER_NAME = 2;
const F_PRODUCER_VERSION = 3;
const F_DOMAIN = 4;
const F_MODEL_VERSION = 5;
const F_DOC_STRING = 6;
const F_GRAPH = 7;
const F_METADATA_PROPS = 14;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor over protobuf bytes. Numbers above 2^53 lose precision, which no field read here reaches. */
class WireReader {
  pos: number;

  constructor(private readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new OnnxFormatError(`truncated varint at byte ${this.pos}`);
      const byte = this.bytes[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new OnnxFormatError(`malformed varint at byte ${this.pos}`);
  }

  /** Returns [start, end) of a length-delimited field's payload and moves past it. */
  lengthDelimited(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) {
      throw new OnnxFormatError(`field of ${length} bytes at byte ${start} runs past the end of its message (byte ${this.end})`);
    }
    this.pos = start + length;
    return [start, start + length];
  }

  string(): string {
    const [start, end] = this.lengthDelimited();
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch {
      throw new OnnxFormatError(`string field at byte ${start} is not valid UTF-8`);
    }
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        throw new OnnxFormatError(`unsupported protobuf wire type ${wireType} at byte ${this.pos}`);
    }
  }

  sub(): WireReader {
    const [start, end] = this.lengthDelimited();
    return new WireReader(this.bytes, start, end);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new OnnxFormatError(`truncated field at byte ${this.pos}`);
    this.pos += n;
  }
}

function expectWire(actual: number, expected: number, field: string): void {
  if (actual !== expected) throw new OnnxFormatError(`ModelProto.${field} has wire type ${actual}, expected ${expected}`);
}

/**
 * Parses the ModelProto header. Throws OnnxFormatError when the bytes are not a ModelProto with a graph (a
 * truncated, corrupt or non-ONNX file); ONNX Runtime reports the finer problems when it loads the graph.
 */
export function readOnnxModelHeader(bytes: Uint8Array): OnnxModelHeader {
  if (bytes.length === 0) throw new OnnxFormatError('the file is empty');
  const header: OnnxModelHeader = {
    irVersion: 0, producerName: '', producerVersion: '', domain: '', modelVersion: 0, docString: '', opsets: [], metadata: {},
    inputs: [], outputs: [],
  };
  let hasGraph = false;
  let hasIrVersion = false;
  const r = new WireReader(bytes);
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new OnnxFormatError(`invalid field number 0 at byte ${r.pos}`);
    switch (field) {
      case F_IR_VERSION:
        expectWire(wire, WIRE_VARINT, 'ir_version');
        header.irVersion = r.varint();
        hasIrVersion = true;
        break;
      case F_PRODUCER_NAME:
        expectWire(wire, WIRE_LEN, 'producer_name');
        header.producerName = r.string();
        break;
      case F_PRODUCER_VERSION:
        expectWire(wire, WIRE_LEN, 'producer_version');
        header.producerVersion = r.string();
        break;
      case F_DOMAIN:
        expectWire(wire, WIRE_LEN, 'domain');
        header.domain = r.string();
        break;
      case F_MODEL_VERSION:
        expectWire(wire, WIRE_VARINT, 'model_version');
        header.modelVersion = r.varint();
        break;
      case F_DOC_STRING:
        expectWire(wire, WIRE_LEN, 'doc_string');
        header.docString = r.string();
        break;
      case F_GRAPH:
        expectWire(wire, WIRE_LEN, 'graph');
        readGraphIo(r.sub(), header);
        hasGraph = true;
        break;
      case F_OPSET_IMPORT:
        expectWire(wire, WIRE_LEN, 'opset_import');
        header.opsets.push(readOpset(r.sub()));
        break;
      case F_METADATA_PROPS: {
        expectWire(wire, WIRE_LEN, 'metadata_props');
        const [k, v] = readStringPair(r.sub());
        header.metadata[k] = v;
        break;
      }
      default:
        r.skip(wire);
    }
  }
  if (!hasIrVersion || !hasGraph) {
    throw new OnnxFormatError(`not an ONNX model: ${hasIrVersion ? '' : 'no ir_version'}${!hasIrVersion && !hasGraph ? ', ' : ''}${hasGraph ? '' : 'no graph'}`);
  }
  return header;
}

function readOpset(r: WireReader): { domain: string; version: number } {
  const opset = { domain: '', version: 0 };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === WIRE_LEN) opset.domain = r.string();
    else if (field === 2 && wire === WIRE_VARINT) opset.version = r.varint();
    else r.skip(wire);
  }
  return opset;
}

function readStringPair(r: WireReader): [string, string] {
  let key = '';
  let value = '';
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 1 && wire === WIRE_LEN) key = r.string();
    else if (field === 2 && wire === WIRE_LEN) value = r.string();
    else r.skip(wire);
  }
  return [key, value];
}

// GraphProto fields: initializer 5, input 11, output 12. ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1.
// TypeProto.Tensor: elem_type 1, shape 2. TensorShapeProto: dim 1. Dimension: dim_value 1, dim_param 2.
function readGraphIo(r: WireReader, header: OnnxModelHeader): void {
  const inputs: GraphValue[] = [];
  const initializers = new Set<string>();
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 11 && wire === WIRE_LEN) inputs.push(readValueInfo(r.sub()));
    else if (field === 12 && wire === WIRE_LEN) header.outputs.push(readValueInfo(r.sub()));
    else if (field === 5 && wire === WIRE_LEN) {
      const t = r.sub();
      while (!t.done) {
        const k = t.varint();
        if (Math.floor(k / 8) === 8 && k % 8 === WIRE_LEN) initializers.add(t.string());
        else t.skip(k % 8);
      }
    } else r.skip(wire);
  }
  // IR < 4 lists initializers among the inputs: they are weights, not what the gateway feeds.
  header.inputs = inputs.filter((i) => !initializers.has(i.name));
}

function readValueInfo(r: WireReader): GraphValue {
  const value: GraphValue = { name: '', type: 'unknown', shape: undefined };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === WIRE_LEN) value.name = r.string();
    else if (field === 2 && wire === WIRE_LEN) {
      const type = r.sub();
      while (!type.done) {
        const k = type.varint();
        if (Math.floor(k / 8) === 1 && k % 8 === WIRE_LEN) readTensorType(type.sub(), value);
        else type.skip(k % 8);
      }
    } else r.skip(wire);
  }
  return value;
}

function readTensorType(r: WireReader, value: GraphValue): void {
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === WIRE_VARINT) value.type = ELEM_TYPES[r.varint()] ?? 'unknown';
    else if (field === 2 && wire === WIRE_LEN) {
      const shape: Array<number | string> = [];
      const s = r.sub();
      while (!s.done) {
        const k = s.varint();
        if (Math.floor(k / 8) === 1 && k % 8 === WIRE_LEN) {
          const d = s.sub();
          let dim: number | string = '?';
          while (!d.done) {
            const dk = d.varint();
            if (Math.floor(dk / 8) === 1 && dk % 8 === WIRE_VARINT) dim = d.varint();
            else if (Math.floor(dk / 8) === 2 && dk % 8 === WIRE_LEN) dim = d.string();
            else d.skip(dk % 8);
          }
          shape.push(dim);
        } else s.skip(k % 8);
      }
      value.shape = shape;
    } else r.skip(wire);
  }
}
