// Types for the `cpio-stream` package (it ships none): the extractor's side, as
// initramfs-reader.ts uses it.
declare module "cpio-stream" {
  import type { Readable, Writable } from "node:stream";

  export interface Header {
    name: string;
    /** "file" | "directory" | "symlink" | "character-device" | "block-device" | "fifo" | "socket", or false */
    type: string | false;
    ino: number;
    mode: number;
    uid: number;
    gid: number;
    nlink: number;
    mtime: Date;
    size: number;
    devmajor: number;
    devminor: number;
    rdevmajor: number;
    rdevminor: number;
    linkname?: string;
  }

  /** An entry's content; `offset` is where the extractor stood in the archive when it emitted it. */
  export interface EntryStream extends Readable {
    offset: number;
  }

  export interface Extract extends Writable {
    on(event: "entry", listener: (header: Header, stream: EntryStream, next: (err?: Error) => void) => void): this;
    on(event: "finish" | "close", listener: () => void): this;
    on(event: "error", listener: (err: Error) => void): this;
  }

  export function extract(): Extract;
}
