import { createReadStream } from "node:fs";
import { copyFile, mkdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { type ByteRange, type ObjectStore, StorageNotFound } from "./types.ts";

// Objects as files under one directory: the key is the path below it. A key that would leave the
// directory (`..`, an absolute path) is refused: keys come from our own code, but a recordingPath
// is an assistant's setting.

export class LocalStore implements ObjectStore {
  readonly name = "local";
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The file of `key` (refused outside the root). */
  pathOf(key: string): string {
    const p = path.resolve(this.root, key);
    if (!p.startsWith(this.root + path.sep)) throw new Error("object key outside the store");
    return p;
  }

  async putFile(key: string, file: string): Promise<void> {
    const to = this.pathOf(key);
    await mkdir(path.dirname(to), { recursive: true });
    try {
      await rename(file, to);
    } catch (err) {
      // Another file system (a spool directory on another volume): copied, then removed.
      if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
      await copyFile(file, to);
      await unlink(file);
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    if ((await this.size(key)) === undefined) throw new StorageNotFound(key);
    return createReadStream(file, range ? { start: range.start, end: range.end } : {});
  }

  async remove(keys: string[]): Promise<void> {
    for (const key of keys) {
      try {
        await unlink(this.pathOf(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
}
