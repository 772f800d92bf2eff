// Generated from server/src/events.rs by `sockeye events-ts`: do not edit by hand.
// `cargo test -p sockeye` checks that this file matches the Rust catalogue.
//
// import type { Socket } from "socket.io-client";
// const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({ auth: { token } });

/** Every server-to-client event carries it; `eventId` is unique (drop duplicates after a reconnect). */
export interface Envelope {
  eventId: string;
  ts: number;
}

/** The error codes of acks. */
export type ErrorCode =
  | "invalid_payload"
  | "rate_limited"
  | "not_found"
  | "forbidden"
  | "unavailable"
  | "queue_full";

/** The answer of a client event: `{ ok: true, ...T }` or `{ ok: false, error }`. */
export type Ack<T = {}> = ({ ok: true } & T) | { ok: false; error: AckError };

/** `search:start`: start a search. */
export interface SearchStart {
  /** 1 to 512 characters, not only blanks. */
  query: string;
}

/** `model:start`: start a streamed model answer. */
export interface ModelStart {
  /** 1 to 8000 characters, not only blanks. */
  prompt: string;
}

/** `task:cancel`: cancel one of your jobs. */
export interface TaskCancel {
  /** The id from the start ack. */
  jobId: string;
}

/** `tab:update`: a tab's state, relayed as `tab:update:v1` to the same user's other tabs. */
export interface TabUpdate {
  /** 1 to 128 bytes. */
  tabId: string;
  /** Any JSON value, at most 16 KiB encoded. */
  state: unknown;
}

/** `presence:subscribe`: follow these users' presence. */
export interface PresenceSubscribe {
  /** 1 to 100 user ids. */
  userIds: string[];
}

/** The success ack of `search:start` and `model:start`. */
export interface JobAccepted {
  /** The job's id, for `task:cancel` and to match the events that follow. */
  jobId: string;
}

/** One user's presence. */
export interface PresenceStatus {
  /** User id (`sub`). */
  userId: string;
  /** Whether the user has a connected socket. */
  online: boolean;
}

/** The success ack of `presence:subscribe`. */
export interface PresenceSnapshot {
  /** The current status of each requested user. */
  users: PresenceStatus[];
}

/** Why a request was refused. */
export interface AckError {
  /** Machine-readable reason. */
  code: ErrorCode;
  /** Human-readable detail. */
  message: string;
}

/** `search:started`: a worker took the search. */
export interface SearchStarted {
  /** Job id. */
  jobId: string;
  /** The query. */
  query: string;
}

/** One search hit. */
export interface SearchHit {
  /** Title. */
  title: string;
  /** Link. */
  url: string;
  /** Extract. */
  snippet: string;
  /** Relevance, 0 to 1. */
  score: number;
}

/** `search:result:v1`: one result of a search. */
export interface SearchResult {
  /** Job id. */
  jobId: string;
  /** 0, 1, 2... in order. */
  index: number;
  /** The hit. */
  result: SearchHit;
}

/** `search:complete:v1`: the search is over. */
export interface SearchComplete {
  /** Job id. */
  jobId: string;
  /** Results sent. */
  total: number;
  /** Time the worker spent. */
  durationMs: number;
}

/** `model:chunk:v1`: the next piece of a model answer. */
export interface ModelChunk {
  /** Job id. */
  jobId: string;
  /** 0, 1, 2... in order. */
  index: number;
  /** Text to append. */
  chunk: string;
}

/** `model:complete:v1`: the model answer is over. */
export interface ModelComplete {
  /** Job id. */
  jobId: string;
  /** The whole answer. */
  text: string;
  /** Tokens produced. */
  tokens: number;
  /** Time the worker spent. */
  durationMs: number;
}

/** `task:progress:v1`: progress of a job. */
export interface TaskProgress {
  /** Job id. */
  jobId: string;
  /** 0 to 1. */
  progress: number;
  /** What the worker is doing. */
  stage: string;
}

/** `task:cancelled:v1`: the job stopped; nothing more comes for it. */
export interface TaskCancelled {
  /** Job id. */
  jobId: string;
}

/** `task:failed:v1`: the job failed; nothing more comes for it. */
export interface TaskFailed {
  /** Job id. */
  jobId: string;
  /** What went wrong. */
  message: string;
}

/** `download:progress:v1`: progress of a download. */
export interface DownloadProgress {
  /** Job id of the download. */
  jobId: string;
  /** Bytes received so far. */
  receivedBytes: number;
  /** Size, when known. */
  totalBytes: number | null;
}

/** `tab:update:v1`: another tab of the same user changed. */
export interface TabUpdated {
  /** The tab that changed. */
  tabId: string;
  /** Its state. */
  state: unknown;
}

/** `user:presence:v1`: online when a user's first socket connects, offline when the last one leaves. */
export interface UserPresence {
  /** User id. */
  userId: string;
  /** Whether the user is online now. */
  online: boolean;
}

export const ClientEvents = {
  searchStart: "search:start",
  modelStart: "model:start",
  taskCancel: "task:cancel",
  tabUpdate: "tab:update",
  presenceSubscribe: "presence:subscribe",
} as const;

export const ServerEvents = {
  searchStarted: "search:started",
  searchResultV1: "search:result:v1",
  searchCompleteV1: "search:complete:v1",
  modelChunkV1: "model:chunk:v1",
  modelCompleteV1: "model:complete:v1",
  taskProgressV1: "task:progress:v1",
  taskCancelledV1: "task:cancelled:v1",
  taskFailedV1: "task:failed:v1",
  downloadProgressV1: "download:progress:v1",
  tabUpdateV1: "tab:update:v1",
  userPresenceV1: "user:presence:v1",
} as const;

export interface ClientToServerEvents {
  "search:start": (payload: SearchStart, ack: (response: Ack<JobAccepted>) => void) => void;
  "model:start": (payload: ModelStart, ack: (response: Ack<JobAccepted>) => void) => void;
  "task:cancel": (payload: TaskCancel, ack: (response: Ack) => void) => void;
  "tab:update": (payload: TabUpdate, ack?: (response: Ack) => void) => void;
  "presence:subscribe": (payload: PresenceSubscribe, ack: (response: Ack<PresenceSnapshot>) => void) => void;
}

export interface ServerToClientEvents {
  "search:started": (payload: Envelope & SearchStarted) => void;
  "search:result:v1": (payload: Envelope & SearchResult) => void;
  "search:complete:v1": (payload: Envelope & SearchComplete) => void;
  "model:chunk:v1": (payload: Envelope & ModelChunk) => void;
  "model:complete:v1": (payload: Envelope & ModelComplete) => void;
  "task:progress:v1": (payload: Envelope & TaskProgress) => void;
  "task:cancelled:v1": (payload: Envelope & TaskCancelled) => void;
  "task:failed:v1": (payload: Envelope & TaskFailed) => void;
  "download:progress:v1": (payload: Envelope & DownloadProgress) => void;
  "tab:update:v1": (payload: Envelope & TabUpdated) => void;
  "user:presence:v1": (payload: Envelope & UserPresence) => void;
}
