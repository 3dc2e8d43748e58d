// Generated from schemas/protocol.schema.json by `nox -s schemas`. Do not edit.
// smart-agent-neo gateway protocol 4: frames, params, results and event payloads.

export interface AgentAbortParams {
  runId?: string | null;
  sessionKey?: string | null;
}

export interface AgentAbortResult {
  ok: boolean;
  aborted: boolean;
  runIds: Array<string>;
}

/** One step of a run. ``seq`` is per run (starts at 1), not the connection's seq. */
export interface AgentEventPayload {
  runId: string;
  seq: number;
  stream: string;
  ts: number;
  data: Record<string, unknown>;
  sessionKey?: string | null;
}

export interface AgentHealth {
  agentId: string;
  isDefault: boolean;
  heartbeat: AgentHeartbeat;
  sessions: SessionStore;
  name?: string | null;
}

export interface AgentHeartbeat {
  enabled: boolean;
  every: string;
  everyMs: number | null;
  prompt: string;
  target: string;
  ackMaxChars: number;
  model?: string | null;
}

export interface AgentMeta {
  sessionKey: string;
  provider: string;
  model: string;
  usage?: Usage | null;
}

/** Start a run. Open: clients send more optional fields (channel, thinking, ...). */
export interface AgentParams {
  message: string;
  idempotencyKey: string;
  agentId?: string | null;
  sessionKey?: string | null;
  timeout?: number | null;
  timeoutMs?: number | null;
  extraSystemPrompt?: string | null;
  label?: string | null;
  [extra: string]: unknown;
}

/** Both stages of ``agent``: the ``accepted`` ack, then ``ok``/``error`` with a summary. */
export interface AgentResponse {
  runId: string;
  status: "accepted" | "ok" | "error";
  acceptedAt?: number | null;
  summary?: string | null;
  result?: AgentResult | null;
}

export interface AgentResult {
  payloads: Array<ReplyPayload>;
  meta: RunMeta;
}

export interface AgentWaitParams {
  runId: string;
  timeoutMs?: number | null;
}

export interface AgentWaitResult {
  runId: string;
  status: "ok" | "error" | "timeout";
  startedAt?: number | null;
  endedAt?: number | null;
  error?: string | null;
}

export interface CancelFrame {
  type: "cancel";
  id: string;
  [extra: string]: unknown;
}

export interface ChallengePayload {
  nonce: string;
  ts: number;
}

export interface ChannelLogoutResult {
  channel: string;
  accountId: string | null;
  cleared: boolean;
  loggedOut?: boolean | null;
  [extra: string]: unknown;
}

export interface ChannelMeta {
  id: string;
  label: string;
  detailLabel: string;
  systemImage?: string | null;
  [extra: string]: unknown;
}

export interface ChannelParams {
  channel: string;
  accountId?: string | null;
}

export interface ChannelRestartResult {
  channel: string;
  accountId: string | null;
  stopped: boolean;
  started: boolean;
  [extra: string]: unknown;
}

export interface ChannelStartResult {
  channel: string;
  accountId: string | null;
  started: boolean;
  [extra: string]: unknown;
}

export interface ChannelStopResult {
  channel: string;
  accountId: string | null;
  stopped: boolean;
  [extra: string]: unknown;
}

export interface ChannelsStatusParams {
  probe?: boolean | null;
  timeoutMs?: number | null;
}

/** Accounts are ``ChannelAccountSnapshot`` objects (``accountId`` required, extra keys allowed), kept schema-free like ``health.channels``. */
export interface ChannelsStatusResult {
  ts: number;
  channelOrder: Array<string>;
  channelLabels: Record<string, string>;
  channels: Record<string, unknown>;
  channelAccounts: Record<string, Array<Record<string, unknown>>>;
  channelDefaultAccountId: Record<string, string>;
  channelDetailLabels?: Record<string, string> | null;
  channelSystemImages?: Record<string, string> | null;
  channelMeta?: Array<ChannelMeta> | null;
  [extra: string]: unknown;
}

export interface ChatHistoryParams {
  sessionKey: string;
  limit?: number | null;
  offset?: number | null;
  agentId?: string | null;
  maxChars?: number | null;
}

export interface ChatHistoryResult {
  sessionKey: string;
  messages: Array<ChatMessage>;
  hasMore: boolean;
  sessionInfo: SessionInfo;
  nextOffset?: number | null;
}

export interface ChatMessage {
  role: "user" | "assistant" | "toolResult" | "system";
  content: Array<ContentBlock>;
  timestamp: number;
  runId?: string | null;
  toolCallId?: string | null;
  toolName?: string | null;
  isError?: boolean | null;
  stopReason?: string | null;
  errorMessage?: string | null;
}

export interface ClientInfo {
  id: string;
  version: string;
  platform: string;
  mode: string;
  displayName?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  instanceId?: string | null;
  buildId?: string | null;
  timeZone?: string | null;
  [extra: string]: unknown;
}

/** The config file as the running gateway sees it; ``problem`` until an edit is valid. */
export interface ConfigStatus {
  path: string;
  exists: boolean;
  valid: boolean;
  reloadMode: string;
  reloads: number;
  restarts: number;
  problem?: string | null;
  lastReloadAt?: number | null;
}

export interface ConnectAuth {
  token?: string | null;
  password?: string | null;
  deviceToken?: string | null;
  bootstrapToken?: string | null;
  [extra: string]: unknown;
}

/** ``connect`` params. Open: unknown keys from newer clients are tolerated. */
export interface ConnectParams {
  minProtocol: number;
  maxProtocol: number;
  client: ClientInfo;
  caps?: Array<string>;
  commands?: Array<string> | null;
  permissions?: Record<string, boolean> | null;
  pathEnv?: string | null;
  role?: string;
  scopes?: Array<string> | null;
  auth?: ConnectAuth | null;
  device?: DeviceIdentity | null;
  locale?: string | null;
  userAgent?: string | null;
  [extra: string]: unknown;
}

/** ``text`` blocks carry ``text``; ``toolCall`` blocks ``id``, ``name``, ``arguments``. */
export interface ContentBlock {
  type: "text" | "toolCall";
  text?: string | null;
  id?: string | null;
  name?: string | null;
  arguments?: string | null;
  truncated?: boolean | null;
}

export interface DeviceIdentity {
  id: string;
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce?: string | null;
  [extra: string]: unknown;
}

export interface EmptyParams {
}

export interface ErrorShape {
  code: string;
  message: string;
  details?: unknown;
  retryable?: boolean | null;
  retryAfterMs?: number | null;
}

export interface EventFrame {
  type: "event";
  event: string;
  payload?: unknown;
  seq?: number | null;
  stateVersion?: StateVersion | null;
}

export interface Features {
  methods: Array<string>;
  events: Array<string>;
  capabilities?: Array<string> | null;
}

/** Our addition to ``status``: what the running process is and how it is bound. */
export interface GatewayStatus {
  pid: number;
  version: string;
  uptimeMs: number;
  url: string;
  bind: string;
  port: number;
  authMode: string;
  configPath: string;
  stateDir: string;
  connections: number;
  profile?: string | null;
}

export interface HealthParams {
  probe?: boolean | null;
}

/** Same shape as ``smart-agent-neo health --json`` (OPERATIONS.md G.1). */
export interface HealthSummary {
  ok: boolean;
  ts: number;
  durationMs: number;
  channels: Record<string, unknown>;
  channelOrder: Array<string>;
  channelLabels: Record<string, string>;
  heartbeatSeconds: number;
  defaultAgentId: string;
  agents: Array<AgentHealth>;
  sessions: SessionStore;
  linkChannel?: LinkChannel | null;
  [extra: string]: unknown;
}

export interface HeartbeatAgent {
  agentId: string;
  enabled: boolean;
  every: string;
  everyMs: number | null;
}

/** A finished agent heartbeat (OPERATIONS.md G.4); kept for ``last-heartbeat``. A monitor reads ``ts`` (is the heartbeat runner alive?), ``status`` and ``indicatorType`` (did the last one succeed, does it need attention?). */
export interface HeartbeatPayload {
  ts: number;
  status: "sent" | "ok-empty" | "ok-token" | "skipped" | "failed";
  id?: string | null;
  to?: string | null;
  accountId?: string | null;
  preview?: string | null;
  durationMs?: number | null;
  hasMedia?: boolean | null;
  reason?: string | null;
  message?: string | null;
  channel?: string | null;
  silent?: boolean | null;
  indicatorType?: "ok" | "alert" | "error" | null;
  [extra: string]: unknown;
}

export interface HeartbeatStatus {
  defaultAgentId: string;
  agents: Array<HeartbeatAgent>;
}

export interface HelloAuth {
  role: string;
  scopes: Array<string>;
}

export interface HelloOk {
  type: "hello-ok";
  protocol: number;
  server: ServerInfo;
  features: Features;
  snapshot: Snapshot;
  auth: HelloAuth;
  policy: Policy;
}

export interface LinkChannel {
  id: string;
  label: string;
  linked: boolean;
  authAgeMs: number | null;
}

export interface LogsTailParams {
  cursor?: number | null;
  limit?: number | null;
  maxBytes?: number | null;
}

export interface LogsTailResult {
  file: string;
  cursor: number;
  size: number;
  lines: Array<string>;
  truncated: boolean;
  reset: boolean;
}

export interface OkResult {
  ok: boolean;
}

export interface PairingApproveParams {
  channel: string;
  code: string;
  accountId?: string | null;
  notify?: boolean | null;
}

export interface PairingApproveResult {
  channel: string;
  approved: boolean;
  id: string;
  accountId: string;
  notified: boolean;
  [extra: string]: unknown;
}

export interface PairingListParams {
  channel: string;
  accountId?: string | null;
}

export interface PairingListResult {
  channel: string;
  requests: Array<PairingRequestInfo>;
  [extra: string]: unknown;
}

export interface PairingRequestInfo {
  id: string;
  code: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  accountId: string;
  username?: string | null;
  name?: string | null;
  [extra: string]: unknown;
}

export interface Policy {
  maxPayload: number;
  maxBufferedBytes: number;
  tickIntervalMs: number;
}

/** One row of the presence table (PROTOCOL.md section 9). Only ``ts`` is required. */
export interface PresenceEntry {
  ts: number;
  host?: string | null;
  ip?: string | null;
  version?: string | null;
  platform?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  mode?: string | null;
  lastInputSeconds?: number | null;
  reason?: string | null;
  tags?: Array<string> | null;
  text?: string | null;
  deviceId?: string | null;
  roles?: Array<string> | null;
  scopes?: Array<string> | null;
  instanceId?: string | null;
}

export interface PresencePayload {
  presence: Array<PresenceEntry>;
}

export interface ReplyPayload {
  text: string;
}

/** Client -> server. Unknown extra keys are tolerated (newer clients add fields). */
export interface RequestFrame {
  type: "req";
  id: string;
  method: string;
  params?: unknown;
  traceparent?: string | null;
  [extra: string]: unknown;
}

export interface ResponseFrame {
  type: "res";
  id: string;
  ok: boolean;
  payload?: unknown;
  error?: ErrorShape | null;
}

export interface RestartParams {
  reason?: string | null;
  delayMs?: number | null;
}

export interface RestartResult {
  ok: boolean;
  scheduled: boolean;
  restartExpectedMs: number;
}

export interface RunMeta {
  durationMs: number;
  agentMeta?: AgentMeta | null;
  aborted?: boolean | null;
}

export interface ServerInfo {
  version: string;
  connId: string;
}

export interface SessionDefaults {
  model: string | null;
  contextTokens: number | null;
}

export interface SessionDefaultsInfo {
  defaultAgentId: string;
  mainKey: string;
  mainSessionKey: string;
  scope?: string | null;
}

export interface SessionInfo {
  hasActiveRun: boolean;
  activeRunIds: Array<string>;
}

export interface SessionRecent {
  key: string;
  updatedAt: number | null;
  age: number | null;
}

export interface SessionRow {
  key: string;
  agentId: string;
  updatedAt: number;
  age: number;
  sizeBytes: number;
  activeRunIds?: Array<string> | null;
}

export interface SessionStore {
  path: string;
  count: number;
  recent: Array<SessionRecent>;
}

export interface SessionsListParams {
  agentId?: string | null;
  limit?: number | null;
}

export interface SessionsListResult {
  ts: number;
  count: number;
  sessions: Array<SessionRow>;
}

export interface SessionsStatus {
  paths: Array<string>;
  count: number;
  defaults: SessionDefaults;
  recent: Array<Record<string, unknown>>;
  byAgent: Array<Record<string, unknown>>;
}

export interface SetHeartbeatsParams {
  enabled: boolean;
}

export interface SetHeartbeatsResult {
  ok: boolean;
  enabled: boolean;
}

export interface ShutdownPayload {
  reason: string;
  restartExpectedMs?: number | null;
}

export interface Snapshot {
  presence: Array<PresenceEntry>;
  health: HealthSummary | Record<string, unknown>;
  stateVersion: StateVersion;
  uptimeMs: number;
  sessionDefaults?: SessionDefaultsInfo | null;
  authMode?: string | null;
  configPath?: string | null;
  stateDir?: string | null;
}

export interface StateVersion {
  presence: number;
  health: number;
}

export interface StatusParams {
  includeChannelSummary?: boolean | null;
}

export interface StatusSummary {
  runtimeVersion: string;
  heartbeat: HeartbeatStatus;
  channelSummary: Array<string>;
  queuedSystemEvents: Array<string>;
  sessions: SessionsStatus;
  gateway: GatewayStatus;
  config: ConfigStatus;
  linkChannel?: LinkChannel | null;
  [extra: string]: unknown;
}

export interface SystemEventParams {
  text: string;
  deviceId?: string | null;
  instanceId?: string | null;
  host?: string | null;
  ip?: string | null;
  mode?: string | null;
  version?: string | null;
  platform?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  lastInputSeconds?: number | null;
  reason?: string | null;
  roles?: Array<string> | null;
  scopes?: Array<string> | null;
  tags?: Array<string> | null;
  sessionKey?: string | null;
  wake?: boolean | null;
}

export interface TickPayload {
  ts: number;
}

export interface Usage {
  input: number;
  output: number;
  total: number;
}

export interface GatewayMethods {
  "agent": { params: AgentParams; result: AgentResponse };
  "agent.abort": { params: AgentAbortParams; result: AgentAbortResult };
  "agent.wait": { params: AgentWaitParams; result: AgentWaitResult };
  "channels.logout": { params: ChannelParams; result: ChannelLogoutResult };
  "channels.restart": { params: ChannelParams; result: ChannelRestartResult };
  "channels.start": { params: ChannelParams; result: ChannelStartResult };
  "channels.status": { params: ChannelsStatusParams; result: ChannelsStatusResult };
  "channels.stop": { params: ChannelParams; result: ChannelStopResult };
  "chat.history": { params: ChatHistoryParams; result: ChatHistoryResult };
  "health": { params: HealthParams; result: HealthSummary };
  "last-heartbeat": { params: EmptyParams; result: unknown };
  "logs.tail": { params: LogsTailParams; result: LogsTailResult };
  "pairing.approve": { params: PairingApproveParams; result: PairingApproveResult };
  "pairing.list": { params: PairingListParams; result: PairingListResult };
  "restart": { params: RestartParams; result: RestartResult };
  "sessions.list": { params: SessionsListParams; result: SessionsListResult };
  "set-heartbeats": { params: SetHeartbeatsParams; result: SetHeartbeatsResult };
  "status": { params: StatusParams; result: StatusSummary };
  "system-event": { params: SystemEventParams; result: OkResult };
  "system-presence": { params: EmptyParams; result: unknown };
}

export interface GatewayEvents {
  "agent": AgentEventPayload;
  "connect.challenge": ChallengePayload;
  "health": HealthSummary;
  "heartbeat": HeartbeatPayload;
  "presence": PresencePayload;
  "shutdown": ShutdownPayload;
  "tick": TickPayload;
}

export type GatewayFrame = RequestFrame | ResponseFrame | EventFrame;
