// Where call recordings are kept: a local directory or an S3-compatible bucket (see types.ts).

export { LocalStore } from "./local.ts";
export { S3Store, type S3StoreOptions } from "./s3.ts";
export { type ByteRange, joinKey, type ObjectStore, StorageNotFound } from "./types.ts";
