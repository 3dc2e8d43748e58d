// Generated from schemas/protocol.schema.json by `nox -s schemas`. Do not edit.
// smart-agent-neo gateway protocol 4: frames, params, results and event payloads.

/** Set on the partial reply a stopped run left behind. */
export interface AbortMeta {
  aborted: boolean;
  origin: "rpc" | "stop-command";
  runId: string;
}

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
  isHeartbeat?: boolean | null;
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
  to?: string | null;
  channel?: string | null;
  accountId?: string | null;
  threadId?: string | null;
  replyTo?: string | null;
  replyChannel?: string | null;
  replyAccountId?: string | null;
  deliver?: boolean | null;
  bestEffortDeliver?: boolean | null;
  thinking?: string | null;
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
  deliveryStatus?: "sent" | "partial_failed" | "failed" | "suppressed" | "queued" | null;
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

/** One file sent with a message; ``content`` is base64 (a ``data:`` URL is accepted too). */
export interface Attachment {
  content: string;
  type?: string | null;
  mimeType?: string | null;
  fileName?: string | null;
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

export interface ChatAbortParams {
  sessionKey: string;
  runId?: string | null;
}

export interface ChatAbortResult {
  ok: boolean;
  aborted: boolean;
  runIds: Array<string>;
}

/** The assistant message so far (cumulative): authoritative when present. */
export interface ChatEventMessage {
  role: "assistant";
  content: Array<TextBlock>;
  timestamp: number;
}

/** One step of a run as WebChat sees it. ``seq`` is per run and counts chat events only (1, 2, 3, ... with no gaps), so a client that sees a gap knows it missed one. */
export interface ChatEventPayload {
  runId: string;
  sessionKey: string;
  seq: number;
  state: "delta" | "final" | "aborted" | "error";
  agentId?: string | null;
  deltaText?: string | null;
  replace?: boolean | null;
  message?: ChatEventMessage | null;
  usage?: ChatUsage | null;
  stopReason?: string | null;
  errorMessage?: string | null;
  errorKind?: "refusal" | "timeout" | "rate_limit" | "context_length" | "unknown" | null;
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
  inFlightRun?: InFlightRun | null;
}

export interface ChatInjectParams {
  sessionKey: string;
  message: string;
  label?: string | null;
}

export interface ChatInjectResult {
  ok: boolean;
  messageId: string;
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
  abort?: AbortMeta | null;
  label?: string | null;
  id?: string | null;
}

/** Open: WebChat clients add optional fields over time. */
export interface ChatSendParams {
  sessionKey: string;
  message: string;
  idempotencyKey: string;
  thinking?: string | null;
  deliver?: boolean | null;
  attachments?: Array<Attachment> | null;
  timeoutMs?: number | null;
  agentId?: string | null;
  sessionId?: string | null;
  queueMode?: "steer" | "followup" | "collect" | "interrupt" | null;
  replyToId?: string | null;
  [extra: string]: unknown;
}

/** ``{runId, status}`` for a send (``started``, or ``in_flight`` / the cached outcome for a repeated key); ``{ok, aborted, runIds}`` when the message was a stop command. */
export interface ChatSendResult {
  runId?: string | null;
  status?: "started" | "in_flight" | "ok" | "error" | null;
  summary?: string | null;
  ok?: boolean | null;
  aborted?: boolean | null;
  runIds?: Array<string> | null;
}

export interface ChatUsage {
  input: number;
  output: number;
  total: number;
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

export interface ConfigGetResult {
  path: string;
  exists: boolean;
  raw: string | null;
  parsed: unknown;
  valid: boolean;
  config: unknown;
  hash: string;
  issues: Array<ConfigIssue>;
  warnings: Array<ConfigIssue>;
  legacyIssues: Array<ConfigIssue>;
}

export interface ConfigIssue {
  path: string;
  message: string;
}

export interface ConfigSchemaResult {
  schema: unknown;
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

/** ``config.set`` / ``config.apply`` (the whole file) and ``config.patch`` (a JSON merge patch: ``null`` deletes a key). */
export interface ConfigWriteParams {
  raw: string;
  baseHash?: string | null;
  sessionKey?: string | null;
  note?: string | null;
  restartDelayMs?: number | null;
}

export interface ConfigWriteResult {
  ok: boolean;
  path: string;
  config: unknown;
  hash: string;
  reload: string;
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

/** ``text`` blocks carry ``text``; ``toolCall`` blocks ``id``, ``name``, ``arguments``; ``image`` blocks (attachments) ``mimeType``, ``bytes``, ``fileName`` and ``omitted`` (the image data itself is never sent back in history). */
export interface ContentBlock {
  type: "text" | "toolCall" | "image";
  text?: string | null;
  id?: string | null;
  name?: string | null;
  arguments?: string | null;
  truncated?: boolean | null;
  mimeType?: string | null;
  bytes?: number | null;
  fileName?: string | null;
  omitted?: boolean | null;
}

export interface DeviceIdParams {
  deviceId: string;
}

export interface DeviceIdResult {
  deviceId: string;
}

export interface DeviceIdentity {
  id: string;
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce?: string | null;
  [extra: string]: unknown;
}

export interface DevicePairApproveResult {
  requestId: string;
  device: PairedDeviceInfo;
}

export interface DevicePairListResult {
  pending: Array<PendingDeviceRequest>;
  paired: Array<PairedDeviceInfo>;
}

export interface DevicePairRejectResult {
  requestId: string;
  deviceId: string;
}

export interface DevicePairResolvedPayload {
  requestId: string;
  deviceId: string;
  decision: "approved" | "rejected" | "removed" | "expired";
  ts: number;
}

export interface DeviceTokenRevokeParams {
  deviceId: string;
  role: string;
}

export interface DeviceTokenRevokeResult {
  deviceId: string;
  role: string;
  revokedAtMs: number;
}

export interface DeviceTokenRotateParams {
  deviceId: string;
  role: string;
  scopes?: Array<string> | null;
}

export interface DeviceTokenRotateResult {
  deviceId: string;
  role: string;
  scopes: Array<string>;
  rotatedAtMs: number;
  tokenDelivery: "in-band" | "withheld-cross-device";
  token?: string | null;
}

export interface DeviceTokenSummary {
  role: string;
  scopes: Array<string>;
  createdAtMs: number;
  rotatedAtMs?: number | null;
  revokedAtMs?: number | null;
  lastUsedAtMs?: number | null;
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
  deliveryQueues?: Record<string, unknown> | null;
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
  deviceToken?: string | null;
  issuedAtMs?: number | null;
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

/** A run still streaming into this session: its text so far, to draw the open bubble. */
export interface InFlightRun {
  runId: string;
  text: string;
}

/** Where a session last talked through a channel (CHANNELS.md 5.2): replies and ``deliver`` without a target go there. */
export interface LastRoute {
  channel: string;
  accountId: string;
  to: string;
  threadId?: string | null;
  replyToId?: string | null;
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

export interface NodeDescription {
  nodeId: string;
  caps: Array<string>;
  commands: Array<string>;
  paired: boolean;
  connected: boolean;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  remoteIp?: string | null;
  permissions?: Record<string, boolean> | null;
  pathEnv?: string | null;
  connectedAtMs?: number | null;
  approvedAtMs?: number | null;
  lastSeenAtMs?: number | null;
  lastSeenReason?: string | null;
  declaredCommands?: Array<string> | null;
  pendingRequestId?: string | null;
  ts: number;
}

export interface NodeError {
  code?: string | null;
  message?: string | null;
  [extra: string]: unknown;
}

export interface NodeEventParams {
  event: string;
  payload?: unknown;
  payloadJSON?: string | null;
  [extra: string]: unknown;
}

export interface NodeEventResult {
  ok: boolean;
  event: string;
  handled: boolean;
}

export interface NodeIdParams {
  nodeId: string;
}

export interface NodeIdResult {
  nodeId: string;
}

/** A node as operators see it: paired (even offline) or connected (even unpaired). */
export interface NodeInfo {
  nodeId: string;
  caps: Array<string>;
  commands: Array<string>;
  paired: boolean;
  connected: boolean;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  remoteIp?: string | null;
  permissions?: Record<string, boolean> | null;
  pathEnv?: string | null;
  connectedAtMs?: number | null;
  approvedAtMs?: number | null;
  lastSeenAtMs?: number | null;
  lastSeenReason?: string | null;
  declaredCommands?: Array<string> | null;
  pendingRequestId?: string | null;
}

export interface NodeInvokeParams {
  nodeId: string;
  command: string;
  idempotencyKey: string;
  params?: unknown;
  timeoutMs?: number | null;
  [extra: string]: unknown;
}

/** Sent to one node only (no ``seq``): run ``command`` and answer with ``node.invoke.result``. */
export interface NodeInvokeRequestPayload {
  id: string;
  nodeId: string;
  command: string;
  paramsJSON: string | null;
  timeoutMs?: number | null;
  idempotencyKey?: string | null;
}

export interface NodeInvokeResult {
  ok: true;
  nodeId: string;
  command: string;
  payload: unknown;
  payloadJSON: string | null;
}

export interface NodeInvokeResultAck {
  ok: boolean;
  ignored?: boolean | null;
}

export interface NodeInvokeResultParams {
  id: string;
  nodeId: string;
  ok: boolean;
  payload?: unknown;
  payloadJSON?: string | null;
  error?: NodeError | null;
  [extra: string]: unknown;
}

export interface NodeListResult {
  ts: number;
  nodes: Array<NodeInfo>;
}

export interface NodePairApproveResult {
  requestId: string;
  node: PairedNode;
}

export interface NodePairListResult {
  pending: Array<PendingNodeRequest>;
  paired: Array<PairedNodeInfo>;
}

export interface NodePairRejectResult {
  requestId: string;
  nodeId: string;
}

export interface NodePairRequestParams {
  nodeId: string;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  caps?: Array<string> | null;
  commands?: Array<string> | null;
  remoteIp?: string | null;
  silent?: boolean | null;
}

export interface NodePairRequestResult {
  status: "pending";
  request: PendingNodeRequest;
  created: boolean;
}

export interface NodePairResolvedPayload {
  requestId: string;
  nodeId: string;
  decision: "approved" | "rejected" | "removed" | "expired";
  ts: number;
}

export interface NodePairVerifyParams {
  nodeId: string;
  token: string;
}

export interface NodePairVerifyResult {
  ok: boolean;
  node?: PairedNodeInfo | null;
}

export interface NodeRenameParams {
  nodeId: string;
  displayName: string;
}

export interface NodeRenameResult {
  nodeId: string;
  displayName: string;
}

export interface OkResult {
  ok: boolean;
}

/** A paired device as lists show it: token strings replaced by summaries. */
export interface PairedDeviceInfo {
  deviceId: string;
  publicKey: string;
  roles: Array<string>;
  scopes: Array<string>;
  createdAtMs: number;
  approvedAtMs: number;
  tokens: Array<DeviceTokenSummary>;
  role?: string | null;
  displayName?: string | null;
  platform?: string | null;
  deviceFamily?: string | null;
  clientId?: string | null;
  clientMode?: string | null;
  remoteIp?: string | null;
  lastSeenAtMs?: number | null;
  lastSeenReason?: string | null;
  connected?: boolean | null;
}

/** The stored record; only ``node.pair.approve`` returns it with its token. */
export interface PairedNode {
  nodeId: string;
  createdAtMs: number;
  approvedAtMs: number;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  caps?: Array<string> | null;
  commands?: Array<string> | null;
  bins?: Array<string> | null;
  permissions?: Record<string, boolean> | null;
  remoteIp?: string | null;
  lastConnectedAtMs?: number | null;
  token: string;
  [extra: string]: unknown;
}

/** A paired node without its token (lists, describe, verify). */
export interface PairedNodeInfo {
  nodeId: string;
  createdAtMs: number;
  approvedAtMs: number;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  caps?: Array<string> | null;
  commands?: Array<string> | null;
  bins?: Array<string> | null;
  permissions?: Record<string, boolean> | null;
  remoteIp?: string | null;
  lastConnectedAtMs?: number | null;
  [extra: string]: unknown;
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
  owner?: string | null;
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

/** A pending request as stored (``{id, code, createdAt, lastSeenAt, meta}``, CHANNELS.md 3.5), plus ``expiresAt`` and the meta fields at the top for convenience. */
export interface PairingRequestInfo {
  id: string;
  code: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  accountId: string;
  username?: string | null;
  name?: string | null;
  meta?: PairingRequestMeta | null;
  [extra: string]: unknown;
}

export interface PairingRequestMeta {
  username: string | null;
  name: string | null;
  accountId: string;
  [extra: string]: unknown;
}

export interface PendingDeviceRequest {
  requestId: string;
  deviceId: string;
  publicKey: string;
  role: string;
  roles: Array<string>;
  scopes: Array<string>;
  isRepair: boolean;
  ts: number;
  reason?: "not-paired" | "role-upgrade" | "scope-upgrade" | "metadata-upgrade" | null;
  displayName?: string | null;
  platform?: string | null;
  deviceFamily?: string | null;
  clientId?: string | null;
  clientMode?: string | null;
  remoteIp?: string | null;
  silent?: boolean | null;
  [extra: string]: unknown;
}

export interface PendingNodeRequest {
  requestId: string;
  nodeId: string;
  isRepair: boolean;
  ts: number;
  displayName?: string | null;
  platform?: string | null;
  version?: string | null;
  coreVersion?: string | null;
  uiVersion?: string | null;
  deviceFamily?: string | null;
  modelIdentifier?: string | null;
  caps?: Array<string> | null;
  commands?: Array<string> | null;
  permissions?: Record<string, boolean> | null;
  remoteIp?: string | null;
  silent?: boolean | null;
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

export interface RequestIdParams {
  requestId: string;
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

/** Open: the reference's clients send more optional fields (``gifPlayback``, ...). */
export interface SendParams {
  to: string;
  idempotencyKey: string;
  message?: string | null;
  mediaUrl?: string | null;
  mediaUrls?: Array<string> | null;
  gifPlayback?: boolean | null;
  channel?: string | null;
  accountId?: string | null;
  threadId?: string | null;
  replyToId?: string | null;
  sessionKey?: string | null;
  agentId?: string | null;
  silent?: boolean | null;
  asVoice?: boolean | null;
  buffer?: string | null;
  filename?: string | null;
  contentType?: string | null;
  forceDocument?: boolean | null;
  parseMode?: "HTML" | null;
  [extra: string]: unknown;
}

/** ``messageId`` is the platform's id of the last part ('' while queued). */
export interface SendResult {
  runId: string;
  messageId: string;
  channel: string;
  deliveryState: "sent" | "queued";
  chatId?: string | null;
  channelId?: string | null;
  toJid?: string | null;
  conversationId?: string | null;
  [extra: string]: unknown;
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
  lastRoute?: LastRoute | null;
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

/** ``skills.bins`` (node role): the binaries the gateway's skills need, for the node to look for on its PATH. This gateway has no skills: always empty. */
export interface SkillsBinsResult {
  bins: Array<string>;
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
  text?: string | null;
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

export interface TextBlock {
  type: "text";
  text: string;
}

export interface TickPayload {
  ts: number;
}

export interface Usage {
  input: number;
  output: number;
  total: number;
}

export interface VoiceWakeSetParams {
  triggers: Array<string>;
}

/** ``voicewake.get`` / ``voicewake.set`` result and the ``voicewake.changed`` payload. */
export interface VoiceWakeTriggers {
  triggers: Array<string>;
}

export interface WakeParams {
  mode: "now" | "next-heartbeat";
  text: string;
  sessionKey?: string | null;
  agentId?: string | null;
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
  "chat.abort": { params: ChatAbortParams; result: ChatAbortResult };
  "chat.history": { params: ChatHistoryParams; result: ChatHistoryResult };
  "chat.inject": { params: ChatInjectParams; result: ChatInjectResult };
  "chat.send": { params: ChatSendParams; result: ChatSendResult };
  "config.apply": { params: ConfigWriteParams; result: ConfigWriteResult };
  "config.get": { params: EmptyParams; result: ConfigGetResult };
  "config.patch": { params: ConfigWriteParams; result: ConfigWriteResult };
  "config.schema": { params: EmptyParams; result: ConfigSchemaResult };
  "config.set": { params: ConfigWriteParams; result: ConfigWriteResult };
  "device.pair.approve": { params: RequestIdParams; result: DevicePairApproveResult };
  "device.pair.list": { params: EmptyParams; result: DevicePairListResult };
  "device.pair.reject": { params: RequestIdParams; result: DevicePairRejectResult };
  "device.pair.remove": { params: DeviceIdParams; result: DeviceIdResult };
  "device.token.revoke": { params: DeviceTokenRevokeParams; result: DeviceTokenRevokeResult };
  "device.token.rotate": { params: DeviceTokenRotateParams; result: DeviceTokenRotateResult };
  "health": { params: HealthParams; result: HealthSummary };
  "last-heartbeat": { params: EmptyParams; result: unknown };
  "logs.tail": { params: LogsTailParams; result: LogsTailResult };
  "node.describe": { params: NodeIdParams; result: NodeDescription };
  "node.event": { params: NodeEventParams; result: NodeEventResult };
  "node.invoke": { params: NodeInvokeParams; result: NodeInvokeResult };
  "node.invoke.result": { params: NodeInvokeResultParams; result: NodeInvokeResultAck };
  "node.list": { params: EmptyParams; result: NodeListResult };
  "node.pair.approve": { params: RequestIdParams; result: NodePairApproveResult };
  "node.pair.list": { params: EmptyParams; result: NodePairListResult };
  "node.pair.reject": { params: RequestIdParams; result: NodePairRejectResult };
  "node.pair.remove": { params: NodeIdParams; result: NodeIdResult };
  "node.pair.request": { params: NodePairRequestParams; result: NodePairRequestResult };
  "node.pair.verify": { params: NodePairVerifyParams; result: NodePairVerifyResult };
  "node.rename": { params: NodeRenameParams; result: NodeRenameResult };
  "pairing.approve": { params: PairingApproveParams; result: PairingApproveResult };
  "pairing.list": { params: PairingListParams; result: PairingListResult };
  "restart": { params: RestartParams; result: RestartResult };
  "send": { params: SendParams; result: SendResult };
  "sessions.list": { params: SessionsListParams; result: SessionsListResult };
  "set-heartbeats": { params: SetHeartbeatsParams; result: SetHeartbeatsResult };
  "skills.bins": { params: EmptyParams; result: SkillsBinsResult };
  "status": { params: StatusParams; result: StatusSummary };
  "system-event": { params: SystemEventParams; result: OkResult };
  "system-presence": { params: EmptyParams; result: unknown };
  "voicewake.get": { params: EmptyParams; result: VoiceWakeTriggers };
  "voicewake.set": { params: VoiceWakeSetParams; result: VoiceWakeTriggers };
  "wake": { params: WakeParams; result: OkResult };
}

export interface GatewayEvents {
  "agent": AgentEventPayload;
  "chat": ChatEventPayload;
  "connect.challenge": ChallengePayload;
  "device.pair.requested": PendingDeviceRequest;
  "device.pair.resolved": DevicePairResolvedPayload;
  "health": HealthSummary;
  "heartbeat": HeartbeatPayload;
  "node.invoke.request": NodeInvokeRequestPayload;
  "node.pair.requested": PendingNodeRequest;
  "node.pair.resolved": NodePairResolvedPayload;
  "presence": PresencePayload;
  "shutdown": ShutdownPayload;
  "tick": TickPayload;
  "voicewake.changed": VoiceWakeTriggers;
}

export type GatewayFrame = RequestFrame | ResponseFrame | EventFrame;
