/**
 * The native addon (native/osprey.cc) and its types. Only src/kernel imports
 * this; everything else goes through Collection, BpfMap, RingReader.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeLink {
  destroy(): void;
  /** destroy on a worker thread (the kernel's detach waits for a grace period) */
  destroyAsync(): Promise<void>;
  pin(path: string): void;
  fd(): number;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  type: number;
  fd: number;
}

export interface NativeMapInfo {
  name: string;
  type: number;
  fd: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface NativeObject {
  setMaxEntries(map: string, n: number): void;
  /** before load: leave the program out of the load */
  skipProgram(prog: string): void;
  load(): void;
  /** load on a worker thread; the object must not be used until it settles */
  loadAsync(): Promise<void>;
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  attach(prog: string): NativeLink;
  attachTracepoint(prog: string, category: string, name: string, cookie?: bigint): NativeLink;
  attachRawTracepoint(prog: string, name: string): NativeLink;
  attachCgroup(prog: string, cgroupPath: string): NativeLink;
  attachUprobe(prog: string, binary: string, func: string, retprobe: boolean, pid: number): NativeLink;
  attachTc(prog: string, ifname: string, direction: 'ingress' | 'egress'): NativeLink;
  /** attach an iter/ program, read the iterator to its end on a worker thread, detach: what the program wrote */
  runIterator(prog: string): Promise<Buffer>;
  pinMap(map: string, path: string): void;
  reuseMap(map: string, fd: number): void;
  close(): void;
}

export interface NativeRingReader {
  close(): void;
  drain(): number;
  /** bytes posted to the ring and not consumed yet; -1 when unknown */
  pending(): number;
}

export interface Native {
  Object: new (path: string) => NativeObject;
  RingReader: new (
    mapFd: number,
    onBatch: (batch: Buffer, count: number) => void,
    holdoffMs?: number,
    wakeMapFd?: number,
  ) => NativeRingReader;
  mapLookup(fd: number, key: Buffer, valueOut: Buffer): boolean;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, nextOut: Buffer): boolean;
  /** throws with errno and `done` (entries written before the failure) */
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags?: number): void;
  /** throws with errno and `done` (entries deleted before the failure) */
  mapDeleteBatch(fd: number, keys: Buffer, count: number): void;
  mapLookupBatch(
    fd: number,
    inBatch: Buffer | null,
    outBatch: Buffer,
    keys: Buffer,
    values: Buffer,
    count: number,
  ): { count: number; done: boolean };
  mapInfo(fd: number): {
    id: number;
    name: string;
    type: number;
    keySize: number;
    valueSize: number;
    maxEntries: number;
  };
  progInfo(fd: number): {
    id: number;
    name: string;
    type: number;
    runCount: number;
    runTimeNs: number;
    verifiedInsns: number;
  };
  enableStats(): number;
  closeFd(fd: number): void;
  /** SO_SNDBUF(FORCE) on a socket; returns the size the kernel set */
  setSendBuffer(fd: number, bytes: number): number;
  probeProgType(type: number): boolean;
  probeMapType(type: number): boolean;
  probeHelper(progType: number, helper: number): boolean;
}

/** The repository root (dist/src/kernel -> ../../..). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let loaded: Native | undefined;

export function native(): Native {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    const addon = path.join(repoRoot, 'build/Release/osprey.node');
    try {
      loaded = require(addon) as Native;
    } catch (err) {
      throw new Error(
        `load native addon ${addon}: ${(err as Error).message}; run scripts/setup.sh to build it`,
      );
    }
  }
  return loaded;
}

/** Where the compiled kernel programs live. */
export function bpfObjectPath(name: string): string {
  return path.join(repoRoot, 'bpf/.output', `${name}.bpf.o`);
}
