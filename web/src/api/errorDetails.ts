// The google.rpc.* details a gRPC error carries (Connect hands them over as raw bytes; the
// generated google.rpc types are not part of the bundle), read with the wire reader.
import { ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The domain of the reasons Parley's services give (see service-kit's grpc_status::Reason). */
export const ERROR_DOMAIN = "parley.dev";

/** The fields of one google.rpc.* detail message the server attached (`type` without the
 * "type.googleapis.com/" prefix), if there is one: (field number, value) pairs of its
 * top-level fields, strings and bytes as bytes. */
export function detailFields(err: ConnectError, type: string): [number, Uint8Array | bigint][] | undefined {
  for (const detail of err.details) {
    if (!("type" in detail) || detail.type !== type) continue;
    const fields: [number, Uint8Array | bigint][] = [];
    const reader = new BinaryReader(detail.value);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (wireType === WireType.LengthDelimited) fields.push([field, reader.bytes()]);
      else if (wireType === WireType.Varint) fields.push([field, BigInt(reader.uint64())]);
      else reader.skip(wireType, field);
    }
    return fields;
  }
  return undefined;
}

/** The google.rpc.ErrorInfo the server attached, if any:
 * ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; } */
export function errorInfo(err: unknown): { reason: string; domain: string; metadata: Record<string, string> } | undefined {
  if (!(err instanceof ConnectError)) return undefined;
  const fields = detailFields(err, "google.rpc.ErrorInfo");
  if (!fields) return undefined;
  const decoder = new TextDecoder();
  const info = { reason: "", domain: "", metadata: {} as Record<string, string> };
  for (const [field, value] of fields) {
    if (!(value instanceof Uint8Array)) continue;
    if (field === 1) info.reason = decoder.decode(value);
    else if (field === 2) info.domain = decoder.decode(value);
    else if (field === 3) {
      // A map entry: { string key = 1; string value = 2; }
      const entry = new BinaryReader(value);
      let key = "";
      let text = "";
      while (entry.pos < entry.len) {
        const [f, w] = entry.tag();
        if (f === 1 && w === WireType.LengthDelimited) key = entry.string();
        else if (f === 2 && w === WireType.LengthDelimited) text = entry.string();
        else entry.skip(w, f);
      }
      info.metadata[key] = text;
    }
  }
  return info;
}
