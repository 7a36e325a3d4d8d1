// The live socket: a single-use ticket, then /v1/live?ticket=. Frames arrive
// one or more per message, separated by '\n'. The client keeps, per set, the
// last broadcast seq and epoch, resubscribes with them after a reconnect or a
// gap, and estimates the server clock offset from ping/pong.

import { post, ApiError, signOutLocally } from './api.js';

export class Live {
  constructor() {
    this.ws = null;
    this.subs = new Map(); // set_id → {since, epoch, status: 'resyncing'|'live'|'stale'}
    this.handlers = new Set();
    this.statusHandlers = new Set();
    this.offset = 0; // server clock − this device's clock, in ms
    this.bestRtt = Infinity;
    this.closed = false;
    this.backoff = 500;
    this.state = 'connecting';
    this.outbox = []; // frames waiting for the socket to open
  }

  on(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }
  onStatus(fn) { this.statusHandlers.add(fn); }
  serverNow() { return Date.now() + this.offset; }

  setState(s) {
    this.state = s;
    for (const fn of this.statusHandlers) fn(s);
  }

  async connect() {
    if (this.closed) return;
    this.setState('connecting');
    let ticket;
    try {
      ticket = (await post('/v1/live/tickets')).ticket;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { this.close(); return; }
      this.retry();
      return;
    }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/v1/live?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.setState('open');
      this.ping();
      for (const [id, s] of this.subs) this.subscribeFrame(id, s);
      const out = this.outbox.splice(0);
      for (const f of out) this.send(f);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.ping(), 10000);
    };
    ws.onmessage = (ev) => {
      for (const line of String(ev.data).split('\n')) {
        if (!line.trim()) continue;
        let f;
        try { f = JSON.parse(line); } catch { continue; }
        this.handle(f);
      }
    };
    ws.onclose = (ev) => {
      clearInterval(this.pinger);
      console.info(`live socket closed: ${ev.code} ${ev.reason}`);
      if (this.ws !== ws) return;
      this.ws = null;
      for (const s of this.subs.values()) s.status = 'stale';
      this.emit({ type: '_stale' });
      if (ev.code === 4001) { this.close(); signOutLocally(); return; }
      this.retry();
    };
  }

  retry() {
    if (this.closed) return;
    this.setState('reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10000);
  }

  close() {
    this.closed = true;
    clearInterval(this.pinger);
    clearTimeout(this.retryTimer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    this.setState('closed');
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  // sendOrQueue sends now, or as soon as the socket is open again.
  sendOrQueue(frame) { if (!this.send(frame)) this.outbox.push(frame); }

  ping() { this.send({ type: 'ping', client_ts: Date.now() }); }

  subscribe(setId) {
    if (!this.subs.has(setId)) this.subs.set(setId, { since: null, epoch: null, status: 'resyncing' });
    const s = this.subs.get(setId);
    this.subscribeFrame(setId, s);
  }

  unsubscribe(setId) {
    this.subs.delete(setId);
    this.send({ type: 'unsubscribe', set_id: setId });
  }

  status(setId) { const s = this.subs.get(setId); return s ? s.status : 'none'; }

  subscribeFrame(setId, s) {
    const f = { type: 'subscribe', set_id: setId };
    if (s.since !== null) { f.since_seq = s.since; f.epoch = s.epoch; }
    s.status = 'resyncing';
    if (this.send(f)) this.emit({ type: '_resyncing', set_id: setId });
  }

  handle(f) {
    if (f.type === 'pong') {
      const now = Date.now();
      const rtt = now - f.client_ts;
      // The least delayed exchange gives the best estimate; let it age out slowly.
      if (rtt <= this.bestRtt * 1.5 || rtt < 50) {
        this.bestRtt = Math.min(rtt, this.bestRtt);
        this.offset = f.server_ts - (f.client_ts + now) / 2;
        this.rtt = rtt;
      }
      this.emit(f);
      return;
    }
    const s = f.set_id ? this.subs.get(f.set_id) : null;
    if (s) {
      if (f.type === 'snapshot' || f.type === 'replayed') {
        s.since = f.last_seq; s.epoch = f.epoch; s.status = 'live';
      } else if (typeof f.seq === 'number') {
        if (s.status !== 'live' && s.since === null) return; // before the snapshot
        if (f.epoch !== s.epoch || (s.since !== null && f.seq !== s.since + 1)) {
          if (f.seq <= s.since && f.epoch === s.epoch) return; // already seen
          // A gap or a new epoch: ask for what was missed (once; the replay
          // or snapshot that answers covers the frames dropped meanwhile).
          if (s.status !== 'resyncing') this.subscribeFrame(f.set_id, s);
          return;
        }
        s.since = f.seq;
      }
    }
    this.emit(f);
  }

  emit(f) { for (const fn of this.handlers) fn(f); }
}
