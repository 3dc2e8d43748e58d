// What the page knows about the gateway, and who wants to hear when it changes.
//
// Filled from hello-ok's snapshot, then kept live by presence/health events; a presence or
// health update whose stateVersion is not newer than what is held is ignored (PROTOCOL.md
// 4.3). A refresh (new socket, seq gap) replaces the lists with what the gateway says now.

export class Store {
  constructor() {
    this.listeners = new Map();
    this.hello = null;
    this.helloAt = 0;
    this.presence = [];
    this.presenceVersion = 0;
    this.health = null;
    this.healthVersion = 0;
    this.status = null;
    this.lastHeartbeat = null;
    this.connection = { state: "idle", detail: null };
    this.shutdown = null;
    this.events = []; // the last 250, for the Debug panel
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  emit(name, value) {
    for (const fn of this.listeners.get(name) || []) {
      try {
        fn(value);
      } catch (err) {
        console.error(`store listener for ${name} failed`, err);
      }
    }
  }

  setConnection(state, detail) {
    this.connection = { state, detail };
    if (state === "connected") this.shutdown = null;
    this.emit("connection", this.connection);
  }

  applyHello(hello) {
    this.hello = hello;
    this.helloAt = Date.now();
    const snap = hello.snapshot || {};
    const version = snap.stateVersion || {};
    this.presence = Array.isArray(snap.presence) ? snap.presence : [];
    this.presenceVersion = version.presence || 0;
    if (snap.health && Object.keys(snap.health).length) {
      this.health = snap.health;
      this.healthVersion = version.health || 0;
    }
    this.emit("hello", hello);
    this.emit("presence", this.presence);
    if (this.health) this.emit("health", this.health);
  }

  get mainSessionKey() {
    const defaults = this.hello && this.hello.snapshot && this.hello.snapshot.sessionDefaults;
    return (defaults && defaults.mainSessionKey) || "agent:main:main";
  }

  get uptimeMs() {
    if (!this.hello) return null;
    return (this.hello.snapshot.uptimeMs || 0) + (Date.now() - this.helloAt);
  }

  // from an event (versioned) or a refresh (version null: always taken)
  setPresence(list, version) {
    if (version !== null && version !== undefined) {
      if (version <= this.presenceVersion) return;
      this.presenceVersion = version;
    }
    this.presence = Array.isArray(list) ? list : [];
    this.emit("presence", this.presence);
  }

  setHealth(health, version) {
    if (version !== null && version !== undefined) {
      if (version <= this.healthVersion) return;
      this.healthVersion = version;
    }
    this.health = health;
    this.emit("health", health);
  }

  setStatus(status) {
    this.status = status;
    this.emit("status", status);
  }

  record(frame) {
    this.events.push({ at: Date.now(), frame });
    if (this.events.length > 250) this.events.splice(0, this.events.length - 250);
    this.emit("debug", frame);
  }
}
