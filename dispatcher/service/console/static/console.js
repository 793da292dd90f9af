/* Loa operator console: calls the /v1 API with the bearer token the user typed.
 *
 * The token lives in this tab's sessionStorage only (never localStorage, cookies or the URL).
 * Everything that comes from the API or from users is written with textContent; the page's
 * Content-Security-Policy requires Trusted Types, so an HTML string could not be written anyway.
 * Every user-facing string comes from i18n/<lang>.json through t().
 */
"use strict";

(() => {
  const TOKEN_KEY = "loa.token";
  const LANG_KEY = "loa.lang";
  const LANGS = ["vi", "en"];
  const ROLES = ["viewer", "operator", "approver", "admin"];
  const FINAL = new Set(["completed", "cancelled", "failed"]);
  const POLL_FAST_MS = 1500;   // while a campaign is sending
  const POLL_SLOW_MS = 5000;   // otherwise: new campaigns and approvals by others
  const RATE_WINDOW_MS = 10000;
  const DEFAULT_TZ = "Asia/Ho_Chi_Minh";
  const DEAD_PAGE = 50;        // dead letters per page

  const state = {
    token: null,
    me: null,
    lang: "vi",
    dicts: {},
    plan: null,
    level: null,
    history: [],
    audit: [],            // the newest audit records (admins)
    cards: new Map(),     // campaign id -> {campaign, detail, el, samples}
    order: [],
    pollTimer: null,
    pollSeq: 0,
    previewed: null,      // the request body last previewed
    preview: null,        // its answer
    idempotencyKey: null,
    list: null,           // the uploaded list's report (POST /v1/lists) the campaign goes to
    lists: [],            // the lists uploaded before (GET /v1/lists), to pick one
    pendingCancel: null,
    stop: null,           // GET /v1/stop: the emergency stop, as last read
    openings: [],         // GET /v1/level/openings: the level in force's opening messages
    pendingLevel: null,   // GET /v1/level/pending: a level raise waiting for its confirmation
    reasonAction: null,   // what the reason dialog asks for: {kind, id?, wave?}
    situation: null,      // GET /v1/situation: the record in force (null: none set yet)
    situationHistory: [], // its last versions, newest first
    situationDirty: false, // the operator has edited the form since it was filled
    fieldSeq: 0,          // ids of the free-field rows of the situation form
    dead: {wave: null, cursor: "", cursors: [], page: null, result: null},  // a wave's dead letters
    texts: [],            // GET /v1/plan/texts?level=N: the level in force's texts' versions
    textsCursor: "",      // the next page's cursor ("": none)
    textsShown: "",       // what the list shows (redrawn only when it changes)
    textDrafts: new Map(),  // version id -> the decision's reason being typed
    recipient: null,      // GET /v1/recipients/{number}: the last number looked up
    incoming: {cursor: "", cursors: [], page: null},  // GET /v1/incoming: the page shown
    // GET /v1/suppressions: a channel's suppression list, page by page (operators)
    supp: {channel: "sms", cursor: "", cursors: [], page: null},
    checklist: null,      // GET /v1/checklist?date=: the day's checklist shown
    checklistDate: "",    // the day asked for ("": today, as the API says)
    doneItem: null,       // the item the done dialog marks
  };

  const $ = (id) => document.getElementById(id);

  // -- strings ----------------------------------------------------------------------------

  function t(key, params) {
    const dict = state.dicts[state.lang] || {};
    let text = key in dict ? dict[key] : (state.dicts.vi || {})[key];
    if (text === undefined) text = key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
    }
    return text;
  }

  function translate(root) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-attr]")) {
      const [attr, key] = el.dataset.i18nAttr.split(":");
      el.setAttribute(attr, t(key));
    }
  }

  async function loadDictionaries() {
    await Promise.all(LANGS.map(async (lang) => {
      const r = await fetch(`i18n/${lang}.json`, {cache: "no-cache", credentials: "omit"});
      state.dicts[lang] = await r.json();
    }));
  }

  function setLanguage(lang, announce) {
    state.lang = LANGS.includes(lang) ? lang : "vi";
    sessionStorage.setItem(LANG_KEY, state.lang);
    document.documentElement.lang = state.lang;
    translate(document);
    for (const tpl of document.querySelectorAll("template")) translate(tpl.content);
    renderAll();
    if (announce) say(t("lang.now"));
  }

  const number = (n) => new Intl.NumberFormat(state.lang).format(n);
  const decimal = (n) => new Intl.NumberFormat(state.lang, {maximumFractionDigits: 1}).format(n);
  const tz = () => (state.plan && state.plan.timezone) || DEFAULT_TZ;

  function when(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat(state.lang, {
      timeZone: tz(), weekday: "short", day: "2-digit", month: "2-digit", year: "numeric",
      hour: "2-digit", minute: "2-digit",
    }).format(new Date(iso));
  }

  function clock(date) {
    return new Intl.DateTimeFormat(state.lang, {
      timeZone: tz(), hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).format(date);
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("dur.s", {s});
    if (s < 3600) return t("dur.ms", {m: Math.floor(s / 60), s: s % 60});
    return t("dur.hm", {h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60)});
  }

  // -- messages -----------------------------------------------------------------------------

  function say(message, kind) {
    const el = $("status");
    el.className = `status ${kind || "info"}`;
    el.textContent = message || "";
  }

  /** The API's problem types (RFC 9457 problem details, docs/api.md#errors). */
  const PROBLEM = "https://loa.example/problems/";

  /** A refused call: its status and the problem details the API answered (`detail` says why,
   *  `field` names the value in error, `type` is one of PROBLEM's). */
  class ApiError extends Error {
    constructor(status, problem) {
      const p = problem || {};
      const detail = typeof p.detail === "string" ? p.detail
        : typeof p.title === "string" ? p.title : "";
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.detail = detail;
      this.type = typeof p.type === "string" ? p.type : "about:blank";
      this.field = typeof p.field === "string" ? p.field : "";
    }
  }

  function explain(err) {
    if (!(err instanceof ApiError)) return t("error.other", {status: "?"});
    switch (err.status) {
      case 0: return t("error.network");
      case 401: return t("error.401");
      case 403: return err.type === `${PROBLEM}not-permitted`
        ? t("error.own_campaign") : t("error.403");
      case 404: return t("error.404");
      case 409: return t("error.409", {detail: err.detail});
      case 422: return t("error.422", {detail: err.detail});
      case 400: return t("error.400", {detail: err.detail});
      case 413: return t("error.413");
      case 422: return t("error.422", {detail: err.detail});
      default:
        if (err.status >= 500) return t("error.500");
        return err.detail ? t("error.other_detail", {status: err.status, detail: err.detail})
          : t("error.other", {status: err.status});
    }
  }

  /** The form inputs that hold the API's fields (a problem's `field`, e.g. `texts.sms`). */
  const NEW_FIELDS = {
    title: "new-title-input", channels: "new-ch-sms", text: "new-text", texts: "new-text",
    "selector.districts": "new-districts", "selector.kinds": "new-kind-resident",
    priority: "new-priority", strip_diacritics: "new-strip", max_parts: "new-max-parts",
    sms_fallback: "new-fallback", subject: "new-subject", owner: "new-owner",
    zns_template: "new-zns-template", zns_params: "new-zns-params",
    audience_list: "new-list-file", selector: "new-districts", body: "new-list-file",
    "content-type": "new-list-file",
  };
  const LEVEL_FIELDS = {cases: "level-cases-input", level: "level-level-input",
    reason: "level-reason-input"};
  const REASON_FIELDS = {reason: "reason-input"};
  const TEXTS_FIELDS = {text: "texts-text-input", subject: "texts-subject-input",
    channel: "texts-channel-input", reason: "texts-reason-input", level: "texts-channel-input"};
  // "situation": a record with which an SMS of the plan would be over its parts, areas or not
  const SITUATION_FIELDS = {cases_today: "situation-cases-today-input",
    cases_total: "situation-cases-total-input", date: "situation-date-input",
    hotline: "situation-hotline-input", areas: "situation-areas-input",
    situation: "situation-areas-input", fields: "situation-field-add"};

  function clearInvalid() {
    for (const el of document.querySelectorAll("[aria-invalid='true']")) {
      el.removeAttribute("aria-invalid");
    }
  }

  /** Mark and focus the input of `fields` that holds the field `err` names: the longest name
   *  that is the field or a part of its path (`texts` for `texts.sms`). */
  function markInvalid(err, fields) {
    clearInvalid();
    if (!(err instanceof ApiError) || !err.field) return;
    let best = "";
    for (const name of Object.keys(fields)) {
      const holds = err.field === name || err.field.startsWith(`${name}.`)
        || err.field.startsWith(`${name}[`);
      if (holds && name.length > best.length) best = name;
    }
    const el = best ? $(fields[best]) : null;
    if (!el) return;
    el.setAttribute("aria-invalid", "true");
    el.focus();
  }

  // -- the API ------------------------------------------------------------------------------

  async function api(method, path, body, headers) {
    const h = {"Authorization": `Bearer ${state.token}`, "Accept": "application/json"};
    const raw = body instanceof Blob;  // a file, sent as it is (its type in `headers`)
    if (body !== undefined && !raw) h["Content-Type"] = "application/json";
    Object.assign(h, headers || {});
    let r;
    try {
      r = await fetch(path, {
        method, headers: h,
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
        cache: "no-store", credentials: "omit", redirect: "error",
      });
    } catch (e) {
      throw new ApiError(0, null);
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!r.ok) {
      if (r.status === 401 && state.me) signOut(t("auth.expired"), "error");
      throw new ApiError(r.status, data && typeof data === "object" ? data : null);
    }
    return data;
  }

  const can = (role) => state.me !== null
    && ROLES.indexOf(state.me.role) >= ROLES.indexOf(role);

  // -- sign-in ------------------------------------------------------------------------------

  async function signIn(token, quiet) {
    state.token = token;
    let me;
    try {
      me = await api("GET", "/v1/me");
    } catch (err) {
      state.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      if (!quiet) say(err.status === 401 ? t("auth.bad_token") : explain(err), "error");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.me = me;
    $("token").value = "";
    showSignedIn();
    if (!quiet) say(t("auth.welcome", {user: me.user, role: t(`role.${me.role}`)}), "ok");
    await Promise.all([loadPlan(), loadLevel()]);
    route(false);
    poll();
  }

  function signOut(message, kind) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.me = null;
    state.plan = null;
    state.level = null;
    state.pendingLevel = null;
    state.history = [];
    state.cards.clear();
    state.order = [];
    state.pollSeq += 1;
    clearTimeout(state.pollTimer);
    $("campaign-list").replaceChildren();
    state.stop = null;
    $("channel-notice").hidden = true;
    state.openings = [];
    state.texts = [];
    state.textsCursor = "";
    state.textsShown = "";
    state.textDrafts.clear();  // a reason one user typed is not shown to the next
    $("texts-list").replaceChildren();
    state.reasonAction = null;
    state.situation = null;
    state.recipient = null;
    state.incoming = {cursor: "", cursors: [], page: null};
    $("incoming-rows").replaceChildren();
    state.supp = {channel: "sms", cursor: "", cursors: [], page: null};
    state.checklist = null;
    state.checklistDate = "";
    state.doneItem = null;
    for (const id of ["checklist-due", "checklist-needed", "checklist-later",
      "checklist-other-list"]) $(id).replaceChildren();
    $("done-dialog").open && $("done-dialog").close();
    state.situationHistory = [];
    state.situationDirty = false;
    state.dead = {wave: null, cursor: "", cursors: [], page: null, result: null};
    $("situation-form").reset();
    $("situation-field-rows").replaceChildren();
    $("cancel-dialog").open && $("cancel-dialog").close();
    $("reason-dialog").open && $("reason-dialog").close();
    resetNewForm();
    showSignedIn();
    say(message || t("auth.signed_out"), kind || "info");
    $("token").focus();
  }

  function showSignedIn() {
    const signedIn = state.me !== null;
    $("view-signin").hidden = signedIn;
    $("tabs").hidden = !signedIn;
    $("who").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    if (signedIn) {
      $("who-name").textContent = state.me.user;
      $("who-role").textContent = t(`role.${state.me.role}`);
    } else {
      for (const id of ["view-level", "view-situation", "view-campaigns", "view-new", "view-dead",
        "view-audit", "view-recipient", "view-incoming", "view-suppressions",
        "view-checklist"]) {
        $(id).hidden = true;
      }
    }
    $("tab-new").hidden = !can("operator");
    $("tab-audit").hidden = !can("admin");
    $("tab-suppressions").hidden = !can("operator");
    $("campaigns-new").hidden = !can("operator");
    $("level-form-card").hidden = !can("operator");
    $("situation-form-card").hidden = !can("operator");
    renderStop();
  }

  // -- views --------------------------------------------------------------------------------

  const VIEWS = {
    level: "view-level", situation: "view-situation", campaigns: "view-campaigns",
    new: "view-new", dead: "view-dead", audit: "view-audit", recipient: "view-recipient",
    incoming: "view-incoming",
    suppressions: "view-suppressions",
    checklist: "view-checklist",
  };
  const DEAD_HASH = "dead-letters/";  // #dead-letters/<wave>: a wave's dead letters

  function route(focus) {
    if (!state.me) return;
    let name = location.hash.replace(/^#/, "") || "level";
    let wave = "";
    if (name.startsWith(DEAD_HASH)) {
      try { wave = decodeURIComponent(name.slice(DEAD_HASH.length)); } catch (e) { wave = ""; }
      name = "dead";
    }
    if (!(name in VIEWS) || (name === "new" && !can("operator"))
        || (name === "audit" && !can("admin")) || (name === "dead" && !wave)
        || (name === "suppressions" && !can("operator"))) name = "level";
    for (const [key, id] of Object.entries(VIEWS)) $(id).hidden = key !== name;
    for (const key of Object.keys(VIEWS)) {
      const tab = $(`tab-${key}`);
      if (!tab) continue;
      // a wave's dead letters are reached from its campaign
      if (key === name || (name === "dead" && key === "campaigns")) {
        tab.setAttribute("aria-current", "page");
      } else {
        tab.removeAttribute("aria-current");
      }
    }
    if (name === "level") loadLevel();
    if (name === "situation") loadSituation();
    if (name === "campaigns") poll();
    if (name === "dead") openDead(wave);
    if (name === "audit") loadAudit();
    if (name === "new") loadLists();
    if (name === "incoming") loadIncoming();
    if (name === "suppressions") loadSupp();
    if (name === "checklist") loadChecklist();
    if (focus) {
      const heading = $(VIEWS[name]).querySelector("h1");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function renderAll() {
    if (!state.me) return;
    showSignedIn();
    renderLevel();
    renderPendingLevel();
    renderPlan();
    renderHistory();
    renderOpenings();
    renderAudit();
    renderSituation();
    renderSituationHistory();
    renderDead();
    renderRecipient();
    renderSupp();
    renderChecklist();
    fillLevelForm();
    fillDistricts();
    fillLists();
    renderList(state.list);
    fillSituationAreas();
    for (const id of state.order) renderCard(state.cards.get(id));
    updateTextCount();
    if (state.preview) renderPreview(state.preview, state.previewed);
  }

  // -- level and plan -----------------------------------------------------------------------

  async function loadPlan() {
    try {
      state.plan = await api("GET", "/v1/plan");
    } catch (err) {
      say(explain(err), "error");
      return;
    }
    renderPlan();
    fillLevelForm();
    fillDistricts();
    fillSituationAreas();
  }

  async function loadLevel() {
    try {
      state.level = await api("GET", "/v1/level");
    } catch (err) {
      if (err.status !== 404) { say(explain(err), "error"); return; }
      state.level = null;
    }
    try {
      state.history = await api("GET", "/v1/level/history?limit=20");
    } catch (err) {
      say(explain(err), "error");
    }
    await loadPendingLevel();
    renderLevel();
    renderPlan();
    renderHistory();
    await loadOpenings();
    await loadTexts();
  }

  // -- a level change waiting for a second person -------------------------------------------

  async function loadPendingLevel() {
    try {
      state.pendingLevel = await api("GET", "/v1/level/pending");
    } catch (err) {
      if (err.status !== 404) say(explain(err), "error");
      state.pendingLevel = null;
    }
    renderPendingLevel();
  }

  function renderPendingLevel() {
    const p = state.pendingLevel;
    $("pending-card").hidden = p === null;
    if (p === null) return;
    $("pending-what").textContent = t("pending.what", {n: p.level, current: p.current});
    $("pending-by").textContent = p.proposed_by || "—";
    $("pending-reason").textContent = p.reason || "—";
    $("pending-expires").textContent = when(p.expires_at);
    const own = state.me !== null && p.proposed_by === state.me.user;
    $("pending-own").hidden = !own;
    $("pending-form").hidden = own || !can("approver");
  }

  async function confirmLevel(event) {
    event.preventDefault();
    const p = state.pendingLevel;
    if (p === null) return;
    const reason = $("pending-reason-input").value.trim();
    if (!reason) {
      say(t("level.need_reason"), "error");
      $("pending-reason-input").focus();
      return;
    }
    try {
      const set = await api("POST", "/v1/level/confirm", {reason, id: p.id});
      say(t("pending.done", {n: set.level}), "ok");
      $("pending-form").reset();
    } catch (err) {
      say(explain(err), "error");
    }
    await Promise.all([loadPlan(), loadLevel()]);
  }

  // -- the plan's texts: proposed, approved by another user, in force from the next wave ----

  const TEXTS_PAGE = 10;  // versions a page of GET /v1/plan/texts brings

  /** The first page of the level in force's versions (`more`: the next page, appended). */
  async function loadTexts(more) {
    const n = state.level ? state.level.level : 0;
    if (!more) {
      state.texts = [];
      state.textsCursor = "";
    }
    if (n > 0) {
      try {
        const cursor = more ? `&cursor=${encodeURIComponent(state.textsCursor)}` : "";
        const page = await api("GET", `/v1/plan/texts?level=${n}&limit=${TEXTS_PAGE}${cursor}`);
        state.texts = more ? state.texts.concat(page.versions) : page.versions;
        state.textsCursor = page.next_cursor;
      } catch (err) {
        if (state.me) say(explain(err), "error");
      }
    }
    renderTexts();
  }

  function renderTexts() {
    const n = state.level ? state.level.level : 0;
    const info = n > 0 ? planLevel(n) : null;
    $("texts-card").hidden = !info;
    if (!info) return;
    const form = $("texts-form");
    form.hidden = !can("operator");
    const select = $("texts-channel-input");
    const channels = Object.keys(info.channels);
    if ([...select.options].map((o) => o.value).join() !== channels.join()) {
      select.replaceChildren(...channels.map((c) => {
        const o = document.createElement("option");
        o.value = c;
        o.textContent = t(`channel.${c}`);
        return o;
      }));
    }
    $("texts-none").hidden = state.texts.length > 0;
    $("texts-more").hidden = !state.textsCursor;
    // the same versions for the same user and language: the list (and what an approver is
    // typing in it) stays as it is
    const shown = JSON.stringify([state.lang, state.me && state.me.user, state.me && state.me.role,
      state.texts]);
    if (shown === state.textsShown) return;
    state.textsShown = shown;
    $("texts-list").replaceChildren(...state.texts.map(textItem));
  }

  const textState = (v) => ({proposed: t("texts.state.proposed"),
    approved: t("texts.state.approved"), rejected: t("texts.state.rejected")})[v.state];

  function textItem(v) {
    const li = document.createElement("li");
    li.className = "text-version";
    li.dataset.version = v.id;
    const head = document.createElement("p");
    head.className = "text-head";
    head.textContent = t("texts.head", {channel: t(`channel.${v.channel}`),
      state: textState(v), by: v.proposed_by, at: when(v.proposed_at)}) + ` · ${v.id}`;
    const text = document.createElement("p");
    text.className = "msg";
    text.textContent = v.text;
    li.append(head, text);
    if (v.reason) {
      const reason = document.createElement("p");
      reason.className = "help";
      reason.textContent = v.reason;
      li.append(reason);
    }
    if (v.decided_at) {
      const decided = document.createElement("p");
      decided.className = "help text-decided";
      decided.textContent = t("texts.decided", {state: textState(v),
        by: v.decided_by, at: when(v.decided_at)});
      if (v.decision_reason) {
        decided.textContent += ` · ${t("texts.decided_because", {reason: v.decision_reason})}`;
      }
      li.append(decided);
    }
    if (v.diff) {
      const details = document.createElement("details");
      details.className = "text-changes";
      const summary = document.createElement("summary");
      summary.textContent = t("texts.diff", {what: v.replaces
        ? t("texts.replaces_version", {id: v.replaces}) : t("texts.replaces_file")});
      const pre = document.createElement("pre");
      pre.className = "text-diff";
      pre.textContent = v.diff;
      details.append(summary, pre);
      li.append(details);
    }
    if (v.state === "proposed") {
      const own = state.me !== null && v.proposed_by === state.me.user;
      if (own) {
        const note = document.createElement("p");
        note.className = "help";
        note.textContent = t("texts.own");
        li.append(note);
      }
      if (can("approver")) li.append(decisionForm(v, own));
    }
    return li;
  }

  /** An approver's decision on a proposed version: a reason (required to reject, optional to
   *  approve) and the buttons; the proposer's own version may only be rejected (withdrawn). */
  function decisionForm(v, own) {
    const form = document.createElement("form");
    form.className = "text-decision";
    form.noValidate = true;
    form.addEventListener("submit", (event) => event.preventDefault());
    const field = document.createElement("div");
    field.className = "field";
    const input = document.createElement("input");
    input.type = "text";
    input.maxLength = 500;
    input.id = `texts-decision-${v.id}`;
    input.value = state.textDrafts.get(v.id) || "";  // typed before the list was redrawn
    input.addEventListener("input", () => state.textDrafts.set(v.id, input.value));
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = t("texts.decision_reason");
    const help = document.createElement("p");
    help.className = "help";
    help.id = `${input.id}-help`;
    help.textContent = t("texts.decision_help");
    input.setAttribute("aria-describedby", help.id);
    field.append(label, input, help);
    const error = document.createElement("p");
    error.className = "dialog-error";
    error.setAttribute("role", "alert");
    const actions = document.createElement("p");
    actions.className = "actions";
    const button = (verb, text, cls) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = text;
      b.addEventListener("click", () => decideText(v, verb, input, error, actions));
      return b;
    };
    if (!own) actions.append(button("approve", t("texts.approve"), "btn btn-primary"));
    actions.append(button("reject", t("texts.reject"), "btn"));
    form.append(field, error, actions);
    return form;
  }

  async function decideText(v, verb, input, error, actions) {
    const reason = input.value.trim();
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    if (verb === "reject" && !reason) {  // the proposer is told why
      error.textContent = t("texts.need_reject_reason");
      say(t("texts.need_reject_reason"), "error");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const buttons = [...actions.querySelectorAll("button")];
    for (const b of buttons) b.disabled = true;
    try {
      const done = await api("POST", `/v1/plan/texts/${encodeURIComponent(v.id)}/${verb}`,
        {reason});
      say(verb === "approve" ? t("texts.approved", {id: done.id})
        : t("texts.rejected", {id: done.id}), "ok");
      state.textDrafts.delete(v.id);
    } catch (err) {
      const why = explain(err);
      error.textContent = why;
      say(why, "error");
      if (err instanceof ApiError && err.field === "reason") {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      return;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
    await Promise.all([loadPlan(), loadTexts()]);
  }

  async function submitText(event) {
    event.preventDefault();
    $("texts-error").textContent = "";
    clearInvalid();
    const text = $("texts-text-input").value;
    if (!text.trim()) {
      $("texts-error").textContent = t("texts.need_text");
      say(t("texts.need_text"), "error");
      $("texts-text-input").focus();
      return;
    }
    const submit = $("texts-submit");
    submit.disabled = true;
    try {
      const v = await api("POST", "/v1/plan/texts", {
        level: state.level ? state.level.level : 0, channel: $("texts-channel-input").value,
        text, subject: $("texts-subject-input").value.trim(),
        reason: $("texts-reason-input").value.trim()});
      say(t("texts.proposed", {id: v.id}), "ok");
      $("texts-form").reset();
    } catch (err) {
      const why = explain(err);
      $("texts-error").textContent = why;
      say(why, "error");
      markInvalid(err, TEXTS_FIELDS);
      return;
    } finally {
      submit.disabled = false;
    }
    await loadTexts();
  }

  // -- the level's opening messages ---------------------------------------------------------

  async function loadOpenings() {
    try {
      state.openings = await api("GET", "/v1/level/openings");
    } catch (err) {
      if (state.me) say(explain(err), "error");
      return;
    }
    renderOpenings();
  }

  /** What the level's opening did on a channel, in words: sent (and how far its wave is),
   * damped, missed, or pending (not decided yet, or waiting for the sending hours). */
  function openingOutcome(o) {
    if (!o) return [t("openings.pending"), t("openings.pending_sub")];
    if (o.outcome === "damped") {
      const hours = state.plan ? state.plan.opening_damping_hours : "?";
      return [t("openings.damped", {hours}),
        o.last_sent ? t("openings.damped_sub", {when: when(o.last_sent)}) : ""];
    }
    if (o.outcome === "missed") {
      const minutes = state.plan ? state.plan.catch_up_minutes : "?";
      return [t("openings.missed"), t("openings.missed_sub", {minutes})];
    }
    const progress = t("openings.progress", {sent: number(o.sent), total: number(o.total)});
    switch (o.state) {
      case "created":
        return o.urgent ? [t("openings.starting"), progress]
          : [t("openings.waiting_hours"), state.plan ? t("openings.waiting_hours_sub", {
            start: state.plan.sending_hours[0], end: state.plan.sending_hours[1]}) : ""];
      case "fanning_out":
      case "sending": return [t("openings.sending"), progress];
      case "paused": return [t("openings.paused"), progress];
      case "cancelled": return [t("openings.cancelled"), progress];
      case "completed": return [t("openings.sent"), progress];
      default: return [t("openings.sent"), ""];
    }
  }

  function renderOpenings() {
    const n = state.level ? state.level.level : 0;
    const info = planLevel(n);
    const byChannel = new Map(state.openings.map((o) => [o.channel, o]));
    // the channels of the level as the plan lists them; openings of others (a plan changed
    // since) are shown after them
    const channels = info ? Object.keys(info.channels) : [];
    for (const o of state.openings) if (!channels.includes(o.channel)) channels.push(o.channel);
    const rows = channels.map((channel) => {
      const o = byChannel.get(channel);
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = t(`channel.${channel}`);
      tr.append(th);
      const [outcome, sub] = openingOutcome(o);
      cell(tr, outcome, o && o.urgent ? [sub, t("openings.urgent")].filter(Boolean).join(" · ") : sub,
        `outcome outcome-${o ? o.outcome : "pending"}`);
      cell(tr, o ? when(o.decided_at) : "—");
      cell(tr, o && o.wave ? o.wave : "—", "", "wave-id");
      return tr;
    });
    $("openings-rows").replaceChildren(...rows);
    $("openings-none").hidden = rows.length > 0;
    $("openings-table-wrap").hidden = rows.length === 0;
  }

  const planLevel = (n) => (state.plan ? state.plan.levels.find((l) => l.level === n) : undefined);

  function levelForCases(cases) {
    if (!state.plan) return null;
    for (const l of state.plan.levels) {
      if (l.min_cases <= cases && (l.max_cases === null || cases <= l.max_cases)) return l.level;
    }
    return 0;
  }

  function levelLabel(n) {
    const info = planLevel(n);
    return info ? t("level.option", {n, name: info.name}) : t("level.option_zero");
  }

  function renderLevel() {
    const lv = state.level;
    $("level-value").textContent = lv ? t("level.value", {n: lv.level}) : t("level.none");
    const info = lv ? planLevel(lv.level) : undefined;
    $("level-name").textContent = info ? `${info.name}: ${info.trigger}`
      : (lv && lv.level === 0 ? t("level.zero") : "");
    $("level-cases").textContent = lv && lv.cases !== null ? number(lv.cases) : "—";
    $("level-since").textContent = lv ? when(lv.since || lv.at) : "—";
    $("level-set-by").textContent = lv && lv.set_by ? lv.set_by : "—";
    $("level-reason").textContent = lv && lv.reason ? lv.reason : "—";
  }

  function cadence(ch) {
    if (ch.period_days === 1) {
      return t("plan.daily", {times: ch.times.map((s) => s.time).join(", ")});
    }
    if (ch.period_days === 7) {
      return ch.times.map((s) => `${t(`weekday.${s.day}`)} ${s.time}`).join(", ");
    }
    const times = ch.times.map((s) => (s.day ? t("plan.day_of", {n: s.day + 1, time: s.time})
      : s.time)).join(", ");
    return t("plan.every", {n: ch.period_days, times});
  }

  function cell(row, text, sub, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (sub) {
      const span = document.createElement("span");
      span.className = "sub";
      span.textContent = sub;
      td.append(span);
    }
    row.append(td);
    return td;
  }

  function renderPlan() {
    const plan = state.plan;
    if (!plan) return;
    $("plan-hours").textContent = t("plan.hours", {
      start: plan.sending_hours[0], end: plan.sending_hours[1]});
    const n = state.level ? state.level.level : 0;
    const info = planLevel(n);
    $("plan-none").hidden = Boolean(info);
    $("plan-table-wrap").hidden = !info;
    const rows = [];
    const activities = [];
    if (info) {
      $("plan-caption").textContent = t("plan.caption", {name: info.name, trigger: info.trigger});
      for (const [channel, ch] of Object.entries(info.channels)) {
        const tr = document.createElement("tr");
        const th = document.createElement("th");
        th.scope = "row";
        th.textContent = t(`channel.${channel}`);
        tr.append(th);
        cell(tr, ch.quantity, `${cadence(ch)} · ${t("plan.per_week", {n: decimal(ch.sends_per_week)})}`);
        cell(tr, ch.next ? when(ch.next) : t("plan.no_next"));
        cell(tr, ch.lead, ch.coordinating.length ? t("plan.with", {units: ch.coordinating.join(", ")}) : "");
        const meta = ch.encoding ? t("plan.sms_meta", {
          encoding: ch.encoding === "ucs2" ? "UCS-2" : "GSM-7", parts: ch.parts}) : "";
        const origin = ch.origin === "approved" ? t("plan.approved_text", {id: ch.version}) : "";
        // an outlet channel: the pages, portals or loudspeaker systems it is published to
        const outlet = !ch.targets ? "" : ch.targets.length
          ? t("plan.targets", {names: ch.targets.map((x) => x.name || x.id).join(", ")})
          : t("plan.no_targets");
        const td = cell(tr, ch.text, [meta, origin, outlet].filter(Boolean).join(" · "), "msg");
        if (ch.refused) {  // an approved version this plan file no longer accepts
          const note = document.createElement("span");
          note.className = "sub refused-text";
          note.textContent = t("plan.refused_text", {id: ch.refused.version,
            reason: ch.refused.reason});
          td.append(note);
        }
        rows.push(tr);
      }
      if (info.activities.length) {
        const h = document.createElement("h3");
        h.textContent = t("plan.activities");
        const ul = document.createElement("ul");
        for (const a of info.activities) {
          const li = document.createElement("li");
          li.textContent = t("plan.activity", {what: a.what, quantity: a.quantity, lead: a.lead});
          ul.append(li);
        }
        activities.push(h, ul);
      }
    }
    $("plan-rows").replaceChildren(...rows);
    $("plan-activities").replaceChildren(...activities);
    $("plan-levels").replaceChildren(...plan.levels.filter((l) => l.level !== n).map((l) => {
      const li = document.createElement("li");
      li.textContent = t("plan.level_item", {n: l.level, name: l.name, trigger: l.trigger});
      return li;
    }));
  }

  function renderHistory() {
    const rows = state.history.map((h) => {
      const tr = document.createElement("tr");
      cell(tr, when(h.at));
      cell(tr, String(h.level), "", "num");
      cell(tr, h.cases === null ? "—" : number(h.cases), "", "num");
      cell(tr, h.reason || "—");
      cell(tr, h.set_by || "—");
      return tr;
    });
    $("history-rows").replaceChildren(...rows);
    $("history-empty").hidden = rows.length > 0;
  }

  // -- the audit log (admins) ---------------------------------------------------------------

  async function loadAudit() {
    try {
      state.audit = await api("GET", "/v1/audit?limit=200");
    } catch (err) {
      say(explain(err), "error");
      return;
    }
    renderAudit();
  }

  function renderAudit() {
    const rows = (state.audit || []).map((r) => {
      const tr = document.createElement("tr");
      cell(tr, String(r.seq), "", "num");
      cell(tr, when(r.at));
      cell(tr, r.who || "—", r.role);
      cell(tr, r.action);
      cell(tr, r.target);
      cell(tr, r.outcome === "pending" ? t("audit.pending") : r.outcome,
           r.intent ? t("audit.of", {seq: r.intent}) : "");
      cell(tr, JSON.stringify(r.detail), "", "audit-detail");
      return tr;
    });
    $("audit-rows").replaceChildren(...rows);
    $("audit-empty").hidden = rows.length > 0;
  }

  function fillLevelForm() {
    const select = $("level-level-input");
    const chosen = select.value;
    const options = [0, ...(state.plan ? state.plan.levels.map((l) => l.level) : [])].map((n) => {
      const o = document.createElement("option");
      o.value = String(n);
      o.textContent = levelLabel(n);
      return o;
    });
    select.replaceChildren(...options);
    if (chosen) select.value = chosen;
    updateCasesHint();
  }

  function updateCasesHint() {
    const raw = $("level-cases-input").value;
    const cases = Number(raw);
    $("level-cases-hint").textContent = raw !== "" && Number.isInteger(cases) && cases >= 0
      ? t("level.cases_hint", {cases: number(cases), level: levelLabel(levelForCases(cases))}) : "";
  }

  function levelBy() {
    return $("level-by-level").checked ? "level" : "cases";
  }

  function switchLevelBy() {
    const byLevel = levelBy() === "level";
    $("level-level-field").hidden = !byLevel;
    $("level-cases-field").hidden = byLevel;
  }

  async function submitLevel(event) {
    event.preventDefault();
    const reason = $("level-reason-input").value.trim();
    const body = {reason};
    if (levelBy() === "cases") {
      const raw = $("level-cases-input").value;
      const cases = Number(raw);
      if (raw === "" || !Number.isInteger(cases) || cases < 0) {
        say(t("level.need_cases"), "error");
        $("level-cases-input").focus();
        return;
      }
      body.cases = cases;
    } else {
      body.level = Number($("level-level-input").value);
    }
    if (!reason) {
      say(t("level.need_reason"), "error");
      $("level-reason-input").focus();
      return;
    }
    try {
      const set = await api("PUT", "/v1/level", body);
      if (set.pending) say(t("level.pending", {n: set.level}), "ok");
      else say(t("level.done", {n: set.level}), "ok");
      $("level-form").reset();
      switchLevelBy();
      updateCasesHint();
    } catch (err) {
      say(explain(err), "error");
      markInvalid(err, LEVEL_FIELDS);
      return;
    }
    await Promise.all([loadPlan(), loadLevel()]);
  }

  // -- the situation record -----------------------------------------------------------------

  async function loadSituation() {
    try {
      state.situation = await api("GET", "/v1/situation");
    } catch (err) {
      if (err.status !== 404) { say(explain(err), "error"); return; }
      state.situation = null;
    }
    try {
      state.situationHistory = await api("GET", "/v1/situation/history?limit=20");
    } catch (err) {
      say(explain(err), "error");
    }
    renderSituation();
    renderSituationHistory();
    if (!state.situationDirty) fillSituationForm();
  }

  /** A record's date ("2026-12-07") as the page writes dates. */
  function day(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat(state.lang, {
      timeZone: "UTC", weekday: "short", day: "2-digit", month: "2-digit", year: "numeric",
    }).format(new Date(`${iso}T00:00:00Z`));
  }

  function today() {  // the date in the plan's time zone, as an <input type="date"> value
    const parts = new Intl.DateTimeFormat("en-CA", {timeZone: tz(), year: "numeric",
      month: "2-digit", day: "2-digit"}).formatToParts(new Date());
    const get = (type) => parts.find((p) => p.type === type).value;
    return `${get("year")}-${get("month")}-${get("day")}`;
  }

  function renderSituation() {
    const v = state.situation;
    $("situation-none").hidden = v !== null;
    $("situation-facts").hidden = v === null;
    const record = v ? v.situation : null;
    $("situation-cases-today").textContent = record ? number(record.cases_today) : "—";
    $("situation-cases-total").textContent = record ? number(record.cases_total) : "—";
    $("situation-date").textContent = record ? day(record.date) : "—";
    $("situation-hotline").textContent = record ? record.hotline : "—";
    $("situation-areas").textContent = record && record.areas.length ? record.areas.join(", ")
      : t("situation.areas_none");
    $("situation-by").textContent = v && v.by ? v.by : "—";
    $("situation-at").textContent = v ? when(v.at) : "—";
    const fields = record ? Object.entries(record.fields) : [];
    $("situation-fields").replaceChildren(...fields.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = `{${name}}`;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }));
    $("situation-fields").hidden = fields.length === 0;
    $("situation-fields-none").hidden = fields.length > 0;
  }

  function renderSituationHistory() {
    const rows = state.situationHistory.map((v) => {
      const r = v.situation;
      const tr = document.createElement("tr");
      cell(tr, when(v.at));
      cell(tr, number(r.cases_today), "", "num");
      cell(tr, number(r.cases_total), "", "num");
      cell(tr, day(r.date));
      cell(tr, r.hotline);
      cell(tr, r.areas.length ? r.areas.join(", ") : "—");
      const fields = Object.entries(r.fields);
      cell(tr, fields.length ? fields.map(([name, value]) => `{${name}}: ${value}`).join(" · ")
        : "—");
      cell(tr, v.by || "—");
      return tr;
    });
    $("situation-history-rows").replaceChildren(...rows);
    $("situation-history-empty").hidden = rows.length > 0;
  }

  /** The province's districts to choose the areas from (the record keeps them by name). */
  function fillSituationAreas(names) {
    const select = $("situation-areas-input");
    const chosen = names ? new Set(names)
      : new Set([...select.selectedOptions].map((o) => o.textContent));
    select.replaceChildren(...(state.plan ? state.plan.districts : []).map((d) => {
      const o = document.createElement("option");
      o.value = d.id;
      o.textContent = d.name;
      o.selected = chosen.has(d.name);
      return o;
    }));
  }

  /** The form holds the record in force (an operator changes what changed), or today's date
   * when none is set. */
  function fillSituationForm() {
    const record = state.situation ? state.situation.situation : null;
    $("situation-cases-today-input").value = record ? String(record.cases_today) : "";
    $("situation-cases-total-input").value = record ? String(record.cases_total) : "";
    $("situation-date-input").value = record ? record.date : today();
    $("situation-hotline-input").value = record ? record.hotline
      : (state.plan && state.plan.hotline) || "";
    fillSituationAreas(record ? record.areas : []);
    $("situation-field-rows").replaceChildren();
    for (const [name, value] of Object.entries(record ? record.fields : {})) {
      addFieldRow(name, value);
    }
    $("situation-error").textContent = "";
    state.situationDirty = false;
  }

  function labelled(tag, id, key, text, cls) {
    const label = document.createElement("label");
    label.htmlFor = id;
    label.dataset.i18n = key;  // translated again when the language changes
    label.textContent = text;
    const input = document.createElement(tag);
    input.id = id;
    input.className = cls;
    return [label, input];
  }

  /** A free field of the record: a name (what texts write between braces) and its value. */
  function addFieldRow(name, value) {
    const n = ++state.fieldSeq;
    const row = document.createElement("div");
    row.className = "field-row";
    const [nameLabel, nameInput] = labelled("input", `situation-field-name-${n}`,
      "situation.field_name", t("situation.field_name"), "field-name");
    nameInput.type = "text";
    nameInput.maxLength = 32;
    nameInput.spellcheck = false;
    nameInput.autocomplete = "off";
    nameInput.value = name || "";
    nameInput.setAttribute("aria-describedby", "situation-fields-help");
    const [valueLabel, valueInput] = labelled("textarea", `situation-field-value-${n}`,
      "situation.field_value", t("situation.field_value"), "field-value");
    valueInput.rows = 2;
    valueInput.maxLength = 300;
    valueInput.value = value || "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-quiet field-remove";
    remove.dataset.i18n = "situation.field_remove";
    remove.textContent = t("situation.field_remove");
    remove.addEventListener("click", () => {
      row.remove();
      state.situationDirty = true;
      $("situation-field-add").focus();
    });
    row.append(nameLabel, nameInput, valueLabel, valueInput, remove);
    $("situation-field-rows").append(row);
    return nameInput;
  }

  function situationBody() {
    const fields = {};
    for (const row of $("situation-field-rows").children) {
      const name = row.querySelector(".field-name").value.trim();
      const value = row.querySelector(".field-value").value.trim();
      if (name || value) fields[name] = value;
    }
    return {
      cases_today: Number($("situation-cases-today-input").value),
      cases_total: Number($("situation-cases-total-input").value),
      date: $("situation-date-input").value,
      hotline: $("situation-hotline-input").value.trim(),
      areas: [...$("situation-areas-input").selectedOptions].map((o) => o.value),
      fields,
    };
  }

  /** Mark the input a refused record's `field` names: a free field's row by its name
   * (`fields.advice`), else as other forms do. */
  function markSituationInvalid(err) {
    markInvalid(err, SITUATION_FIELDS);
    if (!(err instanceof ApiError) || !err.field.startsWith("fields.")) return;
    const name = err.field.slice("fields.".length);
    for (const row of $("situation-field-rows").children) {
      if (row.querySelector(".field-name").value.trim() !== name) continue;
      clearInvalid();
      const input = row.querySelector(".field-value");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
  }

  async function submitSituation(event) {
    event.preventDefault();
    $("situation-error").textContent = "";
    clearInvalid();
    for (const id of ["situation-cases-today-input", "situation-cases-total-input"]) {
      const raw = $(id).value;
      if (raw === "" || !Number.isInteger(Number(raw))) {
        $("situation-error").textContent = t("situation.need_cases");
        say(t("situation.need_cases"), "error");
        $(id).focus();
        return;
      }
    }
    const submit = $("situation-submit");
    submit.disabled = true;
    try {
      const set = await api("PUT", "/v1/situation", situationBody());
      state.situation = set;
      state.situationDirty = false;
      say(t("situation.done", {date: day(set.situation.date)}), "ok");
    } catch (err) {
      const text = explain(err);
      $("situation-error").textContent = text;
      say(text, "error");
      markSituationInvalid(err);
      return;
    } finally {
      submit.disabled = false;
    }
    await Promise.all([loadSituation(), loadPlan()]);
  }

  // -- a wave's dead letters ----------------------------------------------------------------

  function openDead(wave) {
    if (state.dead.wave !== wave) {
      state.dead = {wave, cursor: "", cursors: [], page: null, result: null};
      renderDead();
    }
    return loadDead();
  }

  async function loadDead() {
    const d = state.dead;
    const wave = d.wave;
    if (!wave) return;
    const query = `limit=${DEAD_PAGE}` + (d.cursor ? `&cursor=${encodeURIComponent(d.cursor)}` : "");
    let page;
    try {
      page = await api("GET", `/v1/waves/${encodeURIComponent(wave)}/dead-letters?${query}`);
    } catch (err) {
      if (state.dead === d) say(explain(err), "error");
      return;
    }
    if (state.dead !== d) return;  // another wave was opened meanwhile
    d.page = page;
    renderDead();
  }

  function deadPage(step) {
    const d = state.dead;
    if (!d.page) return;
    if (step > 0 && d.page.next_cursor) {
      d.cursors.push(d.cursor);
      d.cursor = d.page.next_cursor;
    } else if (step < 0 && d.cursors.length) {
      d.cursor = d.cursors.pop();
    } else {
      return;
    }
    loadDead();
  }

  function renderDead() {
    const d = state.dead;
    if (!d.wave) return;
    $("dead-title").textContent = t("dead.title", {wave: d.wave});
    const p = d.page;
    const letters = p ? p.letters : [];
    $("dead-rows").replaceChildren(...letters.map((l) => {
      const tr = document.createElement("tr");
      cell(tr, String(l.id), "", "num");
      cell(tr, l.addr, l.route);
      cell(tr, t(`channel.${l.channel}`));
      cell(tr, number(l.attempts), "", "num");
      cell(tr, l.reason, l.expired ? t("dead.expired") : "");
      return tr;
    }));
    const first = d.cursors.length * DEAD_PAGE + 1;
    $("dead-summary").textContent = p ? t("dead.summary", {n: number(p.total)}) : "";
    $("dead-caption").textContent = p && letters.length ? t("dead.page", {from: number(first),
      to: number(first + letters.length - 1), total: number(p.total)}) : "";
    $("dead-table-wrap").hidden = letters.length === 0;
    $("dead-empty").hidden = !p || letters.length > 0;
    $("dead-next").hidden = !p || !p.next_cursor;
    $("dead-prev").hidden = d.cursors.length === 0;
    $("dead-replay-row").hidden = !can("operator") || !p || p.total === 0;
    const r = d.result;
    $("dead-result").hidden = !r;
    if (r) {
      const parts = [t("dead.replayed", {requeued: number(r.requeued), skipped: number(r.skipped),
        covered: number(r.covered)})];
      if (r.reopened) parts.push(t("dead.reopened"));
      $("dead-result").textContent = parts.join(" ");
    }
  }

  // -- the channels: simulated (sent to no one) or without configuration -------------------

  async function loadChannels() {
    let ready;
    try {
      ready = await api("GET", "/readyz");
    } catch (err) {
      return;  // the store does not answer: the campaigns' poll says so
    }
    const names = (mode) => Object.keys(ready.channels || {})
      .filter((c) => ready.channels[c] === mode).map((c) => t(`channel.${c}`));
    const simulated = names("simulated");
    const missing = names("missing");
    $("channel-simulated").hidden = simulated.length === 0;
    $("channel-simulated").textContent = t("channels.simulated", {channels: simulated.join(", ")});
    $("channel-missing").hidden = missing.length === 0;
    $("channel-missing").textContent = t("channels.missing", {channels: missing.join(", ")});
    $("channel-notice").hidden = !state.me || (simulated.length === 0 && missing.length === 0);
    // the new campaign form offers the outlets this deployment has configured (a simulated
    // one has no page, site or carrier to publish to)
    const offered = OUTLETS.filter((c) => (ready.channels || {})[c] === "configured");
    for (const c of OUTLETS) $(`new-ch-row-${c}`).hidden = !offered.includes(c);
    $("new-outlets-help").hidden = offered.length === 0;
  }

  // -- the emergency stop -------------------------------------------------------------------

  async function loadStop() {
    let current;
    try {
      current = await api("GET", "/v1/stop");
    } catch (err) {
      if (state.me) say(explain(err), "error");
      return;
    }
    if (!state.me) return;
    const before = state.stop;
    state.stop = current;
    // a stop set or lifted by someone else: say so (one's own is said by the action)
    if (before && before.active !== current.active && current.by !== state.me.user) {
      say(current.active ? t("stop.now_on", {user: current.by || "?"})
        : t("stop.now_off", {user: current.by || "?"}), current.active ? "error" : "ok");
    }
    renderStop();
  }

  function renderStop() {
    const s = state.stop;
    const on = Boolean(state.me && s && s.active);
    $("stop-banner").hidden = !on;
    $("stop-strip").hidden = !state.me || !s || on || !can("operator");
    $("stop-lift").hidden = !can("operator");
    document.body.classList.toggle("is-stopped", on);
    if (!on) return;
    $("stop-since").textContent = when(s.at);
    $("stop-by").textContent = s.by || "—";
    $("stop-reason").textContent = s.reason || "—";
  }

  // -- the reason dialog: the emergency stop and its lift, and the plan campaigns' actions ----

  /** What each action asks and does. ``id``: the campaign (plan campaigns' actions). */
  const REASON_ACTIONS = {
    stop: {title: () => t("stop.confirm_title"), text: () => t("stop.confirm_text"),
      note: () => t("stop.confirm_note"), label: () => t("stop.reason_label"),
      help: () => t("stop.reason_help"), yes: () => t("stop.confirm_yes"), danger: true,
      focusBack: () => $("stop-open")},
    lift: {title: () => t("lift.confirm_title"), text: () => t("lift.confirm_text"),
      note: () => t("lift.confirm_note"), label: () => t("lift.reason_label"),
      help: () => t("lift.reason_help"), yes: () => t("lift.confirm_yes"), danger: false,
      focusBack: () => $("stop-lift")},
    pause: {title: (c) => t("plan_action.pause_title", {title: c.title}),
      text: () => t("plan_action.pause_text"), note: () => "",
      label: () => t("plan_action.pause_label"), help: () => t("plan_action.reason_help"),
      yes: () => t("action.pause"), danger: false},
    resume: {title: (c) => t("plan_action.resume_title", {title: c.title}),
      text: () => t("plan_action.resume_text"), note: () => "",
      label: () => t("plan_action.resume_label"), help: () => t("plan_action.reason_help"),
      yes: () => t("action.resume"), danger: false},
    cancel: {title: () => t("plan_action.cancel_title"),
      text: (c) => t("plan_action.cancel_text", {title: c.title}),
      note: () => t("plan_action.cancel_note"), label: () => t("plan_action.cancel_label"),
      help: () => t("plan_action.reason_help"), yes: () => t("plan_action.cancel_yes"),
      danger: true},
    replay: {title: () => t("dead.confirm_title",
      {n: number(state.dead.page ? state.dead.page.total : 0)}),
      text: () => t("dead.confirm_text", {wave: state.dead.wave}),
      note: () => t("dead.confirm_note"), label: () => t("dead.reason_label"),
      help: () => t("dead.reason_help"), yes: () => t("dead.confirm_yes"), danger: false,
      focusBack: () => $("dead-replay")},
    unsuppress: {title: () => t("supp.confirm_title", {number: state.reasonAction.number}),
      text: () => t("supp.confirm_text", {channel: t(`channel.${state.reasonAction.channel}`)}),
      note: () => "", label: () => t("supp.reason_label"), help: () => t("supp.reason_help"),
      yes: () => t("supp.confirm_yes"), danger: true, focusBack: () => $("supp-channel")},
    unmark: {title: () => t("checklist.unmark_title", {what: state.reasonAction.what}),
      text: () => t("checklist.unmark_text"), note: () => "",
      label: () => t("checklist.unmark_reason"), help: () => t("checklist.unmark_help"),
      yes: () => t("checklist.unmark_yes"), danger: false,
      focusBack: () => $("checklist-refresh")},
  };

  function askReason(kind, id, extra) {
    const spec = REASON_ACTIONS[kind];
    const entry = id ? state.cards.get(id) : undefined;
    if (id && !entry) return;
    const c = entry ? entry.campaign : null;
    state.reasonAction = {kind, id, wave: state.dead.wave, ...(extra || {})};
    $("reason-dialog-title").textContent = spec.title(c);
    $("reason-dialog-text").textContent = spec.text(c);
    $("reason-dialog-note").textContent = spec.note(c);
    $("reason-dialog-note").hidden = !spec.note(c);
    $("reason-label").textContent = spec.label(c);
    $("reason-help").textContent = spec.help(c);
    $("reason-input").value = "";
    $("reason-error").textContent = "";
    const yes = $("reason-yes");
    yes.textContent = spec.yes(c);
    yes.className = spec.danger ? "btn btn-danger" : "btn btn-primary";
    yes.disabled = false;
    $("reason-form").classList.toggle("danger", spec.danger);
    $("reason-dialog").showModal();
    $("reason-input").focus();
  }

  function closeReason() {
    const action = state.reasonAction;
    state.reasonAction = null;
    if ($("reason-dialog").open) $("reason-dialog").close();
    if (!action) return;
    const spec = REASON_ACTIONS[action.kind];
    const entry = action.id ? state.cards.get(action.id) : undefined;
    const back = spec.focusBack ? spec.focusBack()
      : entry && entry.el && entry.el.querySelector(`.act-${action.kind}`);
    if (back && !back.hidden && back.offsetParent !== null) back.focus();
  }

  async function submitReason(event) {
    event.preventDefault();
    const action = state.reasonAction;
    if (!action) return;
    const reason = $("reason-input").value.trim();
    if (!reason) {
      $("reason-error").textContent = t("reason.needed");
      $("reason-input").focus();
      return;
    }
    const yes = $("reason-yes");
    yes.disabled = true;
    $("reason-error").textContent = "";
    let done;
    try {
      if (action.kind === "stop") {
        state.stop = await api("POST", "/v1/stop", {reason});
        done = t("stop.done");
      } else if (action.kind === "lift") {
        state.stop = await api("DELETE", "/v1/stop", {reason});
        done = t("lift.done");
      } else if (action.kind === "unsuppress") {
        await api("DELETE", `/v1/suppressions/${encodeURIComponent(action.channel)}/`
          + encodeURIComponent(action.number), {reason});
        done = t("supp.removed", {number: action.number,
          channel: t(`channel.${action.channel}`)});
      } else if (action.kind === "unmark") {
        await api("DELETE", `/v1/checklist/${encodeURIComponent(action.item)}/done`,
          {reason, date: action.date});
        done = t("checklist.unmarked", {what: action.what});
      } else if (action.kind === "replay") {
        const answer = await api("POST",
          `/v1/waves/${encodeURIComponent(action.wave)}/dead-letters/replay`, {reason});
        if (state.dead.wave === action.wave) {
          state.dead.result = answer;
          state.dead.cursor = "";
          state.dead.cursors = [];
        }
        done = t("dead.done", {n: number(answer.requeued)});
      } else {
        const entry = state.cards.get(action.id);
        const updated = await api("POST",
          `/v1/campaigns/${encodeURIComponent(action.id)}/${action.kind}`, {reason});
        if (entry) {
          entry.campaign = updated;
          entry.el.querySelector(".campaign-msg").textContent = "";
          renderCard(entry);
        }
        done = t(ACTION_DONE[action.kind], {title: updated.title});
      }
    } catch (err) {
      yes.disabled = false;
      const text = explain(err);
      $("reason-error").textContent = text;
      say(text, "error");
      markInvalid(err, REASON_FIELDS);
      if (!state.me) closeReason();
      return;
    }
    closeReason();
    renderStop();
    afterReason(action);
    say(done, "ok");
    if (action.kind === "replay") {
      renderDead();
      loadDead();
    }
    if (action.kind === "unsuppress") loadSupp();
    if (action.kind === "unmark") loadChecklist();
    poll();
  }

  /** The focus after a confirmed action, when the button that opened the dialog is gone: on the
   * button that undoes it, or else on the campaign's title. */
  function afterReason(action) {
    const entry = action.id ? state.cards.get(action.id) : undefined;
    const next = {stop: () => $("stop-lift"), lift: () => $("stop-open"),
      pause: () => entry && entry.el.querySelector(".act-resume"),
      resume: () => entry && entry.el.querySelector(".act-pause")}[action.kind];
    const target = next ? next() : null;
    if (target && !target.hidden && target.offsetParent !== null) {
      target.focus();
    } else if (entry && entry.el) {
      const title = entry.el.querySelector(".campaign-title");
      title.setAttribute("tabindex", "-1");
      title.focus();
    }
  }

  // -- campaigns ----------------------------------------------------------------------------

  async function poll() {
    if (!state.me) return;
    const seq = ++state.pollSeq;
    clearTimeout(state.pollTimer);
    let fast = false;
    const extra = [loadStop(), loadChannels()];
    if (!$("view-level").hidden) extra.push(loadOpenings());
    try {
      const [list] = await Promise.all([api("GET", "/v1/campaigns"), ...extra]);
      if (seq !== state.pollSeq) return;
      const fetches = [];
      for (const campaign of list) {
        let entry = state.cards.get(campaign.id);
        if (!entry) {
          entry = {campaign, detail: null, el: null, samples: {}, finalSeen: false};
          state.cards.set(campaign.id, entry);
        }
        entry.campaign = campaign;
        // a finished campaign is read once more, for its last counts
        if (!FINAL.has(campaign.state) || !entry.finalSeen) {
          fetches.push(loadDetail(entry));
        }
      }
      await Promise.all(fetches);
      if (seq !== state.pollSeq) return;
      fast = list.some((c) => sending(state.cards.get(c.id)));
      state.order = list.map((c) => c.id);
      const keep = new Set(state.order);
      for (const id of [...state.cards.keys()]) if (!keep.has(id)) state.cards.delete(id);
      renderCampaigns();
      $("campaigns-updated").textContent = t("campaigns.updated", {time: clock(new Date())});
    } catch (err) {
      if (seq !== state.pollSeq || !state.me) return;
      say(explain(err), "error");
    }
    if (seq === state.pollSeq && state.me) {
      state.pollTimer = setTimeout(poll, fast ? POLL_FAST_MS : POLL_SLOW_MS);
    }
  }

  /** Whether the campaign is sending (or about to): the page then polls fast. The plan's own
   * campaigns stay running as long as their level, so their waves tell. */
  function sending(entry) {
    const c = entry.campaign;
    if (c.state === "approved") return true;
    if (c.state !== "running") return false;
    if (c.level === null) return true;
    const progress = entry.detail ? Object.values(entry.detail.progress) : [];
    return progress.some((p) => p.state === "fanning_out" || p.state === "sending");
  }

  async function loadDetail(entry) {
    const detail = await api("GET", `/v1/campaigns/${encodeURIComponent(entry.campaign.id)}`);
    entry.detail = detail;
    entry.campaign = detail.campaign;
    if (FINAL.has(detail.campaign.state)) entry.finalSeen = true;
    const now = Date.now();
    for (const [channel, p] of Object.entries(detail.progress)) {
      const done = handled(p);
      const samples = entry.samples[channel] || (entry.samples[channel] = []);
      samples.push([now, done]);
      while (samples.length > 2 && now - samples[0][0] > RATE_WINDOW_MS) samples.shift();
    }
  }

  function renderCampaigns() {
    const list = $("campaign-list");
    const items = state.order.map((id) => {
      const entry = state.cards.get(id);
      if (!entry.el) entry.el = buildCard(entry);
      renderCard(entry);
      return entry.el;
    });
    // keep the existing nodes (and the focus inside them): move only what changed place
    items.forEach((el, i) => {
      if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
    });
    while (list.children.length > items.length) list.lastElementChild.remove();
    $("campaigns-empty").hidden = items.length > 0;
  }

  function buildCard(entry) {
    const el = $("tpl-campaign").content.firstElementChild.cloneNode(true);
    const id = entry.campaign.id;
    el.dataset.id = id;
    el.id = `campaign-${id}`;
    const title = el.querySelector(".campaign-title");
    title.id = `campaign-title-${id}`;
    el.setAttribute("aria-labelledby", title.id);
    el.querySelector(".act-approve").addEventListener("click", () => act(id, "approve"));
    // the plan's own campaigns ask for a reason (the API requires one to pause or cancel them)
    const plan = () => state.cards.get(id) && state.cards.get(id).campaign.level !== null;
    el.querySelector(".act-pause").addEventListener("click",
      () => (plan() ? askReason("pause", id) : act(id, "pause")));
    el.querySelector(".act-resume").addEventListener("click",
      () => (plan() ? askReason("resume", id) : act(id, "resume")));
    el.querySelector(".act-cancel").addEventListener("click",
      () => (plan() ? askReason("cancel", id) : askCancel(id)));
    return el;
  }

  function renderCard(entry) {
    if (!entry || !entry.el) return;
    const c = entry.campaign;
    const el = entry.el;
    el.querySelector(".campaign-title").textContent = c.title;
    const badge = el.querySelector(".state");
    badge.textContent = t(`state.${c.state}`);
    badge.className = `badge state state-${c.state}`;
    el.classList.toggle("state-done", c.state === "completed");
    const meta = [t("campaign.id", {id: c.id}), t("campaign.by", {user: c.created_by, when: when(c.created_at)})];
    if (c.approved_by) meta.push(t("campaign.approved_by", {user: c.approved_by}));
    if (c.audience_size) meta.push(t("campaign.recipients", {n: number(c.audience_size)}));
    if (c.audience_list) meta.push(t("campaign.list", {id: c.audience_list}));
    if (c.priority === "urgent") meta.push(t("campaign.urgent"));
    if (c.level !== null) meta.push(t("campaign.plan", {n: c.level}));
    // why it was last paused, resumed or stopped, when a person did it
    if (c.state_reason && c.state_by && c.state_by !== "plan") {
      meta.push(t("campaign.state_reason", {user: c.state_by, reason: c.state_reason}));
    }
    el.querySelector(".campaign-meta").textContent = meta.join(" · ");
    const firstText = c.texts[c.channels[0]] || "";
    el.querySelector(".campaign-text").textContent = firstText;

    const channels = el.querySelector(".channels");
    const progress = entry.detail ? entry.detail.progress : {};
    const rows = c.channels.map((channel) => channelRow(entry, channels, channel, progress[channel], c));
    rows.forEach((row, i) => {
      if (channels.children[i] !== row) channels.insertBefore(row, channels.children[i] || null);
    });

    const own = c.level === null;
    const live = !FINAL.has(c.state);
    el.querySelector(".act-approve").hidden = !(own && can("approver") && c.state === "pending_approval");
    el.querySelector(".act-pause").hidden = !(can("operator") && c.state === "running");
    el.querySelector(".act-resume").hidden = !(can("operator") && c.state === "paused");
    el.querySelector(".danger-zone").hidden = !(can("operator") && live);
    const anyAction = [".act-approve", ".act-pause", ".act-resume"].some((s) => !el.querySelector(s).hidden)
      || !el.querySelector(".danger-zone").hidden;
    el.querySelector(".campaign-actions").hidden = !anyAction;
  }

  function channelRow(entry, container, channel, p, c) {
    let row = container.querySelector(`[data-channel="${channel}"]`);
    if (!row) {
      row = $("tpl-channel").content.firstElementChild.cloneNode(true);
      row.dataset.channel = channel;
      const name = row.querySelector(".channel-name");
      name.id = `ch-${c.id}-${channel}`;
      row.querySelector("progress").setAttribute("aria-labelledby", name.id);
    }
    row.querySelector(".channel-name").textContent = t(`channel.${channel}`);
    const bar = row.querySelector("progress");
    const pct = row.querySelector(".channel-pct");
    const counts = row.querySelector(".channel-counts");
    const dead = row.querySelector(".channel-dead");
    dead.hidden = !(p && p.dead_lettered > 0 && p.wave);
    if (!dead.hidden) {
      dead.href = `#${DEAD_HASH}${encodeURIComponent(p.wave)}`;
      dead.textContent = t("dead.link", {n: number(p.dead_lettered)});
    }
    if (!p) {
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-valuetext", "0%");
      pct.textContent = "";
      counts.textContent = c.state === "pending_approval" ? t("campaign.waiting_approval")
        : (FINAL.has(c.state) ? "" : t("campaign.waiting"));
      return row;
    }
    // what has an outcome: sent, or given up on (dead letters); cancelled messages are not
    // counted as progress but told apart ("not sent")
    const done = Math.min(handled(p), p.total);
    const percent = p.total > 0 ? Math.floor((done / p.total) * 100) : 100;
    bar.max = Math.max(p.total, 1);
    bar.value = p.total > 0 ? done : 1;
    bar.setAttribute("aria-valuetext", `${percent}%`);
    pct.textContent = t("campaign.pct", {done: number(done), total: number(p.total), pct: percent});
    const live = !FINAL.has(c.state);
    const parts = [live
      ? t("campaign.counts", {queued: number(p.queued), sent: number(p.sent),
        delivered: number(p.delivered), failed: number(p.dead_lettered)})
      : t("campaign.counts_final", {sent: number(p.sent), delivered: number(p.delivered),
        failed: number(p.dead_lettered)})];
    if (live && p.retrying > 0) parts.push(t("campaign.retrying", {n: number(p.retrying)}));
    if (p.fallback > 0) parts.push(t("campaign.fallback", {n: number(p.fallback)}));
    if (p.suppressed > 0) parts.push(t("campaign.suppressed", {n: number(p.suppressed)}));
    if (p.over_quota > 0) parts.push(t("campaign.over_quota", {n: number(p.over_quota)}));
    if (p.quota_unknown) parts.push(t("campaign.quota_unknown"));
    const notSent = live ? p.cancelled : p.total - done;
    if (notSent > 0) parts.push(t("campaign.cancelled_n", {n: number(notSent)}));
    const left = p.queued + p.retrying;
    if (p.state === "created" && c.state === "running") {
      parts.push(state.plan ? t("campaign.waiting_hours", {
        start: state.plan.sending_hours[0], end: state.plan.sending_hours[1]})
        : t("campaign.waiting"));
    } else if (left > 0 && c.state === "running") {
      const rate = measuredRate(entry.samples[channel]) ?? p.rate;
      parts.push(t("campaign.rate", {rate: decimal(rate)}));
      parts.push(rate > 0 ? t("campaign.eta", {eta: duration(left / rate)}) : t("campaign.eta_unknown"));
    } else if (p.rate > 0 && left === 0) {
      parts.push(t("campaign.rate", {rate: decimal(p.rate)}));
    }
    counts.textContent = parts.join(" · ");
    return row;
  }

  // suppressed: left out at fan-out (on the suppression list): handled, not sent
  const handled = (p) => p.sent + p.dead_lettered + (p.suppressed || 0);

  function measuredRate(samples) {
    if (!samples || samples.length < 2) return null;
    const [t0, d0] = samples[0];
    const [t1, d1] = samples[samples.length - 1];
    if (t1 - t0 < 1000) return null;
    return Math.max(0, (d1 - d0) / ((t1 - t0) / 1000));
  }

  const ACTION_DONE = {approve: "action.approved", pause: "action.paused",
    resume: "action.resumed", cancel: "action.cancelled"};

  async function act(id, verb) {
    const entry = state.cards.get(id);
    if (!entry) return;
    const msg = entry.el.querySelector(".campaign-msg");
    msg.textContent = "";
    try {
      const updated = await api("POST", `/v1/campaigns/${encodeURIComponent(id)}/${verb}`);
      entry.campaign = updated;
      say(t(ACTION_DONE[verb], {title: updated.title}), "ok");
    } catch (err) {
      const text = explain(err);
      msg.textContent = text;
      say(text, "error");
    }
    renderCard(entry);
    poll();
  }

  function askCancel(id) {
    const entry = state.cards.get(id);
    if (!entry) return;
    state.pendingCancel = id;
    $("cancel-dialog-text").textContent = t("cancel.text", {title: entry.campaign.title});
    $("cancel-dialog").showModal();
    $("cancel-no").focus();
  }

  function closeCancel(confirmed) {
    const dialog = $("cancel-dialog");
    const id = state.pendingCancel;
    state.pendingCancel = null;
    if (dialog.open) dialog.close();
    const entry = id ? state.cards.get(id) : undefined;
    if (entry) entry.el.querySelector(".act-cancel").focus();
    if (confirmed && id) act(id, "cancel");
  }

  // -- new campaign -------------------------------------------------------------------------

  const CHANNELS = ["sms", "zalo", "email", "app"];
  // the outlets: a post, a bulletin or an area broadcast per target, offered where configured
  const OUTLETS = ["facebook", "portal", "loudspeaker", "cell_broadcast"];
  const KINDS = ["resident", "visitor", "official"];

  function fillDistricts() {
    const select = $("new-districts");
    const chosen = new Set([...select.selectedOptions].map((o) => o.value));
    const options = (state.plan ? state.plan.districts : []).map((d) => {
      const o = document.createElement("option");
      o.value = d.id;
      o.textContent = d.name;
      o.selected = chosen.has(d.id);
      return o;
    });
    select.replaceChildren(...options);
  }

  function formBody() {
    const channels = CHANNELS.filter((c) => $(`new-ch-${c}`).checked).concat(
      OUTLETS.filter((c) => !$(`new-ch-row-${c}`).hidden && $(`new-ch-${c}`).checked));
    const selector = state.list ? {districts: [], kinds: []} : {
      districts: [...$("new-districts").selectedOptions].map((o) => o.value),
      kinds: KINDS.filter((k) => $(`new-kind-${k}`).checked),
    };
    return {
      title: $("new-title-input").value.trim(),
      channels,
      text: $("new-text").value,
      selector,
      priority: $("new-priority").value,
      strip_diacritics: $("new-strip").checked,
      max_parts: Number($("new-max-parts").value),
      sms_fallback: channels.includes("zalo") && $("new-fallback").checked,
      public_safety: $("new-public-safety").checked,
      subject: channels.includes("email") ? $("new-subject").value.trim() : "",
      owner: $("new-owner").value.trim(),
      zns_template: channels.includes("zalo") ? $("new-zns-template").value.trim() : "",
      zns_params: channels.includes("zalo") ? znsParams($("new-zns-params").value) : {},
      audience_list: state.list ? state.list.id : "",
    };
  }

  function znsParams(text) {  // "name=value" lines
    const params = {};
    for (const line of text.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) params[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return params;
  }

  const previewBody = (b) => ({text: b.text, channels: b.channels, selector: b.selector,
    strip_diacritics: b.strip_diacritics, max_parts: b.max_parts, priority: b.priority,
    sms_fallback: b.sms_fallback, zns_template: b.zns_template, zns_params: b.zns_params,
    audience_list: b.audience_list, public_safety: b.public_safety});
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  function checkForm(body, needTitle) {
    if (needTitle && !body.title) return ["new.need_title", "new-title-input"];
    if (!body.channels.length) return ["new.need_channel", "new-ch-sms"];
    if (!body.text.trim()) return ["new.need_text", "new-text"];
    if (!Number.isInteger(body.max_parts) || body.max_parts < 1 || body.max_parts > 10) {
      return ["new.need_max_parts", "new-max-parts"];
    }
    return null;
  }

  function updateTextCount() {
    $("new-text-count").textContent = t("new.count", {n: number($("new-text").value.length)});
  }

  function formChanged() {
    const body = formBody();
    $("new-fallback-row").hidden = !body.channels.includes("zalo");
    $("new-zns-row").hidden = !body.channels.includes("zalo");
    $("new-subject-row").hidden = !body.channels.includes("email");
    // a list replaces the districts and kinds
    $("new-districts").disabled = state.list !== null;
    for (const k of KINDS) $(`new-kind-${k}`).disabled = state.list !== null;
    $("new-list-clear").hidden = state.list === null;
    updateTextCount();
    const fresh = state.previewed !== null && same(previewBody(body), state.previewed);
    $("new-submit").disabled = !fresh;
    if (state.previewed !== null && !fresh) {
      $("new-submit-help").textContent = t("new.stale");
    } else {
      $("new-submit-help").textContent = t("new.submit_help");
    }
  }

  async function runPreview() {
    const body = formBody();
    const problem = checkForm(body, false);
    if (problem) {
      say(t(problem[0]), "error");
      $(problem[1]).focus();
      return;
    }
    const request = previewBody(body);
    say(t("new.previewing"));
    let answer;
    try {
      answer = await api("POST", "/v1/preview", request);
    } catch (err) {
      say(explain(err), "error");
      markInvalid(err, NEW_FIELDS);
      return;
    }
    state.previewed = request;
    state.preview = answer;
    state.idempotencyKey = crypto.randomUUID();
    renderPreview(answer, request);
    formChanged();
    say(t("new.previewed"), "ok");
  }

  function renderPreview(p, request) {
    $("preview-empty").hidden = true;
    $("preview-body").hidden = false;
    const listed = Object.values(p.suppressed || {}).reduce((a, n) => a + n, 0);
    $("preview-suppressed").hidden = listed === 0;
    $("preview-suppressed").textContent = t("preview.suppressed", {n: number(listed),
      what: p.public_safety ? t("preview.suppressed_reach") : t("preview.suppressed_skip")});
    const sms = p.sms;
    $("preview-sms").hidden = !sms;
    $("preview-text-wrap").hidden = !sms;
    $("preview-carriers-title").hidden = !sms;
    $("preview-carriers-table").hidden = !sms;
    if (sms) {
      $("preview-encoding").textContent = t(sms.encoding === "ucs2" ? "preview.ucs2" : "preview.gsm7");
      $("preview-chars").textContent = number(sms.chars);
      $("preview-parts").textContent = number(sms.parts);
      $("preview-pdus").textContent = number(sms.pdus);
      $("preview-text").textContent = sms.text;
      $("preview-carriers").replaceChildren(...Object.entries(sms.by_carrier)
        .sort((a, b) => b[1] - a[1]).map(([carrier, n]) => {
        const tr = document.createElement("tr");
        cell(tr, carrier);
        cell(tr, number(n), "", "num");
        return tr;
      }));
    }
    $("preview-channels").replaceChildren(...request.channels.map((channel) => {
      const ch = p.channels[channel] || {recipients: 0, seconds: null};
      const tr = document.createElement("tr");
      cell(tr, t(`channel.${channel}`));
      cell(tr, number(ch.recipients), "", "num");
      let time = t("preview.no_limit");
      if (ch.seconds !== null) {
        time = channel === "sms" && sms && sms.tps
          ? t("preview.at_tps", {duration: duration(ch.seconds), tps: decimal(sms.tps)})
          : duration(ch.seconds);
      }
      cell(tr, time);
      // the text as it would be sent now, its fields rendered from the situation record
      const meta = ch.encoding ? t("preview.rendered_meta", {
        encoding: t(ch.encoding === "ucs2" ? "preview.ucs2" : "preview.gsm7"),
        parts: number(ch.parts), pdus: number(ch.pdus)}) : "";
      // {district}: one text per district; the one shown is the longest district name's
      const per = ch.district ? t("preview.per_district", {
        n: number(Object.keys(ch.districts || {}).length), name: ch.district}) : "";
      cell(tr, typeof ch.text === "string" ? ch.text : "—", [per, meta].filter(Boolean)
        .join(" · "), "msg rendered");
      return tr;
    }));
    const zns = p.zns;
    $("preview-zns").hidden = !zns;
    if (zns) {
      $("preview-zns-template").textContent = t("preview.zns_template",
        {name: zns.template, id: zns.template_id});
      $("preview-zns-params").replaceChildren(...zns.params.map((param) => {
        const tr = document.createElement("tr");
        cell(tr, param.name);
        cell(tr, param.value);
        cell(tr, `${number(param.length)} / ${number(param.limit)}`, "", "num");
        return tr;
      }));
    }
    $("preview-approval").hidden = !p.needs_approval;
    $("preview-audience").textContent = t("preview.audience", {n: number(p.audience_size)});
    $("preview-zalo").hidden = !p.zalo;
    if (p.zalo) $("preview-zalo").textContent = zaloCapacity(p.zalo);
  }

  // Zalo's daily quota against the audience on Zalo, and what becomes of the rest
  function zaloCapacity(z) {
    const args = {n: number(z.recipients), remaining: number(z.remaining || 0),
      beyond: number(z.beyond), reset: z.reset};
    if (z.remaining === null) return t("preview.zalo_unknown", args);
    if (!z.beyond) return t("preview.zalo_fits", args);
    return z.over_quota === "sms" ? t("preview.zalo_sms", args) : t("preview.zalo_wait", args);
  }

  async function submitCampaign(event) {
    event.preventDefault();
    const body = formBody();
    const problem = checkForm(body, true);
    if (problem) {
      say(t(problem[0]), "error");
      $(problem[1]).focus();
      return;
    }
    if (!state.previewed || !same(previewBody(body), state.previewed)) {
      say(t("new.stale"), "error");
      return;
    }
    const submit = $("new-submit");
    submit.disabled = true;
    let created;
    try {
      created = await api("POST", "/v1/campaigns", body, {"Idempotency-Key": state.idempotencyKey});
    } catch (err) {
      submit.disabled = false;
      say(explain(err), "error");
      markInvalid(err, NEW_FIELDS);
      return;
    }
    resetNewForm();
    say(t("new.created", {title: created.title, state: t(`state.${created.state}`)}), "ok");
    location.hash = "#campaigns";
  }

  // -- a list of numbers (POST /v1/lists): uploaded, its report shown, the campaign's audience

  async function uploadList() {
    const file = $("new-list-file").files[0];
    if (!file) {
      say(t("new.list_need_file"), "error");
      $("new-list-file").focus();
      return;
    }
    const json = file.name.toLowerCase().endsWith(".json") || file.type === "application/json";
    const button = $("new-list-upload");
    button.disabled = true;
    say(t("new.list_uploading"));
    let report;
    try {
      report = await api("POST", `/v1/lists?name=${encodeURIComponent(file.name.slice(0, 200))}`, file,
        {"Content-Type": json ? "application/json" : "text/csv"});
    } catch (err) {
      say(err instanceof ApiError && err.status === 413
        ? t("new.list_too_large", {detail: err.detail || ""}) : explain(err), "error");
      markInvalid(err, NEW_FIELDS);
      return;
    } finally {
      button.disabled = false;
    }
    clearInvalid();
    state.list = report;
    renderList(report);
    formChanged();
    loadLists();
    say(t("new.list_done", {valid: number(report.valid)}), "ok");
  }

  async function loadLists() {
    try {
      state.lists = await api("GET", "/v1/lists");
    } catch (err) {
      say(explain(err), "error");
      return;
    }
    fillLists();
  }

  function fillLists() {
    const none = document.createElement("option");
    none.value = "";
    none.textContent = t("new.list_pick_none");
    const options = state.lists.map((l) => {
      const o = document.createElement("option");
      o.value = l.id;
      o.textContent = t("new.list_option", {name: l.name || l.id, n: number(l.recipients),
        when: when(l.created_at)});
      return o;
    });
    $("new-list-pick").replaceChildren(none, ...options);
    $("new-list-pick").value = state.list ? state.list.id : "";
  }

  function pickList() {
    const id = $("new-list-pick").value;
    const picked = state.lists.find((l) => l.id === id);
    if (!picked) {
      clearList();
      return;
    }
    state.list = {id: picked.id, name: picked.name, picked: true, valid: picked.recipients,
      created_at: picked.created_at};
    $("new-list-file").value = "";
    renderList(state.list);
    formChanged();
  }

  function renderList(report) {
    $("new-list-report").hidden = report === null;
    if (report === null) return;
    if (report.picked) {
      $("new-list-summary").textContent = t("new.list_picked", {name: report.name || report.id,
        n: number(report.valid), when: when(report.created_at)}) + " " + t("new.list_active");
      $("new-list-rejects-wrap").hidden = true;
      return;
    }
    $("new-list-summary").textContent = t("new.list_summary", {name: report.name || report.id,
      valid: number(report.valid), rows: number(report.rows),
      duplicates: number(report.duplicates), rejected: number(report.rejected)})
      + " " + t("new.list_active");
    const left = report.duplicates + report.rejected;
    $("new-list-rejects-wrap").hidden = report.rejects.length === 0;
    const rows = report.rejects.map((r) => {
      const tr = document.createElement("tr");
      cell(tr, number(r.line), "", "num");
      cell(tr, r.reason);
      cell(tr, r.fields.join(", "));
      return tr;
    });
    if (left > report.rejects.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 3;
      td.textContent = t("new.list_more", {shown: number(report.rejects.length),
        n: number(left)});
      tr.append(td);
      rows.push(tr);
    }
    $("new-list-rejects").replaceChildren(...rows);
  }

  function clearList() {
    state.list = null;
    $("new-list-file").value = "";
    $("new-list-pick").value = "";
    renderList(null);
    formChanged();
  }

  function resetNewForm() {
    $("new-form").reset();
    state.list = null;
    renderList(null);
    clearInvalid();
    state.previewed = null;
    state.preview = null;
    state.idempotencyKey = null;
    $("preview-empty").hidden = false;
    $("preview-body").hidden = true;
    formChanged();
  }

  // -- did this citizen get it? (GET /v1/recipients/{number}) ---------------------------------

  async function lookUpRecipient(event) {
    event.preventDefault();
    const input = $("recipient-number");
    const written = input.value.trim();
    if (!written) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const days = Math.min(366, Math.max(1, parseInt($("recipient-days").value, 10) || 30));
    state.recipient = null;
    try {
      state.recipient = await api("GET",
        `/v1/recipients/${encodeURIComponent(written)}?days=${days}`);
      say("");
    } catch (err) {
      $("recipient-result").hidden = true;
      if (err instanceof ApiError && err.status === 404) {
        say(t("recipient.unknown"), "error");
      } else if (err instanceof ApiError && err.status === 400 && err.field === "number") {
        input.setAttribute("aria-invalid", "true");
        say(t("recipient.bad", {detail: err.detail}), "error");
      } else {
        say(explain(err), "error");
      }
      return;
    }
    renderRecipient();
  }

  function outcomeText(w) {
    let text = t(`recipient.outcome.${w.outcome}`, {reason: w.reason || ""});
    if (w.fallback) {
      text += "; " + t("recipient.fallback", {outcome: t(`recipient.outcome.${w.fallback}`,
        {reason: ""})});
    }
    return text;
  }

  function renderRecipient() {
    const v = state.recipient;
    $("recipient-result").hidden = !v;
    if (!v) return;
    $("recipient-number-title").textContent = v.number;
    $("recipient-district").textContent = v.row.district || "—";
    $("recipient-kind").textContent = t(`kind.${v.row.kind}`);
    $("recipient-carrier").textContent = v.row.carrier;
    $("recipient-zalo").textContent = v.row.zalo ? t("recipient.yes") : t("recipient.no");
    $("recipient-suppressed").textContent = (v.suppressed || []).length
      ? v.suppressed.map((e) => t("recipient.suppressed_on",
        {channel: t(`channel.${e.channel}`), reason: e.reason})).join("; ")
      : t("recipient.suppressed_none");
    $("recipient-none").hidden = v.waves.length > 0;
    $("recipient-none").textContent = t("recipient.none", {days: v.days});
    $("recipient-table-wrap").hidden = v.waves.length === 0;
    $("recipient-caption").textContent = t("recipient.caption",
      {n: number(v.waves.length), days: v.days});
    $("recipient-rows").replaceChildren(...v.waves.map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.wave = w.wave;
      tr.dataset.outcome = w.outcome;
      cell(tr, when(w.slot_at || w.created_at));
      cell(tr, w.campaign_title || (w.level ? t("recipient.level", {level: w.level}) : w.campaign),
        w.wave);
      cell(tr, t(`channel.${w.channel}`));
      cell(tr, outcomeText(w), "", `outcome outcome-${w.outcome}`);
      cell(tr, w.text, w.fallback_text ? `SMS: ${w.fallback_text}` : "");
      return tr;
    }));
  }

  // -- what citizens sent (GET /v1/incoming) --------------------------------------------------

  const INCOMING_PAGE = 50;

  async function loadIncoming() {
    const inc = state.incoming;
    const channel = $("incoming-channel").value;
    const query = `limit=${INCOMING_PAGE}` + (channel ? `&channel=${channel}` : "")
      + (inc.cursor ? `&cursor=${encodeURIComponent(inc.cursor)}` : "");
    let page;
    try {
      page = await api("GET", `/v1/incoming?${query}`);
    } catch (err) {
      if (state.incoming === inc) say(explain(err), "error");
      return;
    }
    if (state.incoming !== inc) return;  // signed out, or another channel meanwhile
    inc.page = page;
    renderIncoming();
  }

  function incomingFrom(step) {
    const inc = state.incoming;
    if (step === 0) {
      state.incoming = {cursor: "", cursors: [], page: null};
    } else if (step > 0 && inc.page && inc.page.next_cursor) {
      inc.cursors.push(inc.cursor);
      inc.cursor = inc.page.next_cursor;
    } else if (step < 0 && inc.cursors.length) {
      inc.cursor = inc.cursors.pop();
    } else {
      return;
    }
    loadIncoming();
  }

  function optOutText(i) {
    if (!i.opt_out) return t("incoming.no");
    return i.kind === "unfollow" ? t("incoming.opt_out_unfollow")
      : t("incoming.opt_out_keyword", {keyword: i.keyword});
  }

  function renderIncoming() {
    const inc = state.incoming;
    const p = inc.page;
    const items = p ? p.items : [];
    $("incoming-rows").replaceChildren(...items.map((i) => {
      const tr = document.createElement("tr");
      tr.dataset.kind = i.kind;
      tr.dataset.optOut = i.opt_out ? "yes" : "no";
      cell(tr, when(i.at));
      cell(tr, i.number || t("incoming.unknown_sender"));
      cell(tr, t(`channel.${i.channel}`));
      const part = i.part ? t("incoming.part", {part: i.part}) : "";
      cell(tr, i.text, [t(`incoming.kind.${i.kind}`), i.encoding, part].filter(Boolean)
        .join(" · "));
      cell(tr, optOutText(i), "", i.opt_out ? "opt-out" : "");
      return tr;
    }));
    const days = p ? number(p.retention_days) : "";
    $("incoming-caption").textContent = p ? t("incoming.caption", {n: number(items.length),
      days}) : "";
    $("incoming-table-wrap").hidden = items.length === 0;
    $("incoming-empty").hidden = !p || items.length > 0;
    $("incoming-empty").textContent = p ? t("incoming.empty", {days}) : "";
    $("incoming-next").hidden = !p || !p.next_cursor;
    $("incoming-prev").hidden = inc.cursors.length === 0;
  }

  // -- the checklist: the plan's work for people (GET /v1/checklist, POST/DELETE .../done) ---

  const DONE_FIELDS = {note: "done-note", unit: "done-unit", date: "checklist-date"};

  async function loadChecklist() {
    const asked = state.checklistDate;
    let found;
    try {
      found = await api("GET", `/v1/checklist${asked ? `?date=${encodeURIComponent(asked)}` : ""}`);
    } catch (err) {
      say(explain(err), "error");
      markInvalid(err, DONE_FIELDS);
      return;
    }
    if (state.checklistDate !== asked || !state.me) return;  // another day meanwhile
    state.checklist = found;
    renderChecklist();
  }

  /** An item's cadence in words: "hằng ngày", "2 lần/tuần: Thứ Hai, Thứ Năm", "khi cần". */
  function cadence(text) {
    const weekly = /^(\d+)\/week \(([a-z, ]+)\)$/.exec(text);
    if (weekly) {
      const names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
      const days = weekly[2].split(", ").map((d) => t(`weekday.${names.indexOf(d)}`));
      return t("checklist.cadence.weekly", {n: weekly[1], days: days.join(", ")});
    }
    const every = /^every (\d+) days$/.exec(text);
    if (every) return t("checklist.cadence.every", {n: every[1]});
    return text === "daily" ? t("checklist.cadence.daily") : t("checklist.cadence.as_needed");
  }

  function renderChecklist() {
    const c = state.checklist;
    const lists = {due: [], needed: [], later: [], other: []};
    if (c) {
      for (const item of c.items) {
        const group = !item.in_force ? "other" : item.due ? "due"
          : item.next_due === null ? "needed" : "later";
        lists[group].push(checklistItem(item, c));
      }
      $("checklist-date").value = c.date;
      $("checklist-summary").textContent = c.level
        ? t("checklist.summary", {day: day(c.date), level: c.level, name: c.level_name,
          done: number(c.done), due: number(c.due)})
        : t("checklist.summary_none", {day: day(c.date)});
    } else {
      $("checklist-summary").textContent = "";
    }
    $("checklist-groups").hidden = !c || !c.level;
    $("checklist-due").replaceChildren(...lists.due);
    $("checklist-due-empty").hidden = lists.due.length > 0;
    $("checklist-needed").replaceChildren(...lists.needed);
    $("checklist-later").replaceChildren(...lists.later);
    $("checklist-other-list").replaceChildren(...lists.other);
    $("checklist-other").hidden = lists.other.length === 0;
  }

  function checklistItem(item, c) {
    const el = $("tpl-checklist-item").content.firstElementChild.cloneNode(true);
    translate(el);
    const what = `${item.field}: ${item.what}`;
    el.querySelector(".checklist-what").textContent = what;
    const done = item.done;
    el.classList.toggle("is-done", done !== null);
    const badge = el.querySelector(".checklist-state");
    badge.textContent = done ? t("checklist.state_done") : item.due ? t("checklist.state_todo")
      : item.next_due === null ? t("checklist.state_as_needed") : t("checklist.state_not_due");
    badge.classList.add(done ? "done" : item.due ? "todo" : "later");
    el.querySelector(".checklist-quantity").textContent = t("checklist.quantity",
      {quantity: item.quantity, cadence: cadence(item.cadence)});
    const units = [t("checklist.lead", {lead: item.lead})];
    if (item.coordinating.length) {
      units.push(t("checklist.with", {units: item.coordinating.join(", ")}));
    }
    el.querySelector(".checklist-units").textContent = units.join(" · ");
    const notes = [t("checklist.id", {id: item.id})];
    if (!item.due && item.next_due && item.in_force) {
      notes.push(t("checklist.next", {day: day(item.next_due)}));
    }
    if (item.carried) notes.push(t("checklist.carried"));
    if (item.channel) notes.push(t("checklist.channel", {channel: t(`channel.${item.channel}`)}));
    el.querySelector(".checklist-note").textContent = notes.join(" · ");
    el.querySelector(".checklist-done").textContent = done
      ? t("checklist.done", {unit: done.unit, by: done.by, at: when(done.at), note: done.note})
      : "";
    const mark = el.querySelector(".checklist-mark");
    const unmark = el.querySelector(".checklist-unmark");
    mark.hidden = !can("operator") || done !== null || !item.in_force || c.date > today();
    unmark.hidden = !can("operator") || done === null;
    mark.setAttribute("aria-label", t("checklist.mark_label", {what}));
    unmark.setAttribute("aria-label", t("checklist.unmark_label", {what}));
    mark.addEventListener("click", () => openDone(item, c.date));
    unmark.addEventListener("click",
      () => askReason("unmark", undefined, {item: item.id, what, date: c.date}));
    return el;
  }

  function openDone(item, date) {
    state.doneItem = {item, date};
    $("done-dialog-text").textContent = t("checklist.done_text",
      {what: `${item.field}: ${item.what}`, day: day(date)});
    $("done-unit").replaceChildren(...[item.lead, ...item.coordinating].map((unit) => {
      const option = document.createElement("option");
      option.value = unit;
      option.textContent = unit;
      return option;
    }));
    $("done-note").value = "";
    $("done-error").textContent = "";
    $("done-yes").disabled = false;
    $("done-dialog").showModal();
    $("done-note").focus();
  }

  function closeDone() {
    state.doneItem = null;
    if ($("done-dialog").open) $("done-dialog").close();
    const back = $("checklist-refresh");
    if (back.offsetParent !== null) back.focus();
  }

  async function submitDone(event) {
    event.preventDefault();
    const asked = state.doneItem;
    if (!asked) return;
    const note = $("done-note").value.trim();
    if (!note) {
      $("done-error").textContent = t("checklist.need_note");
      $("done-note").setAttribute("aria-invalid", "true");
      $("done-note").focus();
      return;
    }
    $("done-yes").disabled = true;
    const what = `${asked.item.field}: ${asked.item.what}`;
    try {
      await api("POST", `/v1/checklist/${encodeURIComponent(asked.item.id)}/done`,
        {note, unit: $("done-unit").value, date: asked.date});
    } catch (err) {
      $("done-yes").disabled = false;
      const text = explain(err);
      $("done-error").textContent = text;
      say(text, "error");
      markInvalid(err, DONE_FIELDS);
      if (!state.me) closeDone();
      return;
    }
    closeDone();
    say(t("checklist.marked", {what}), "ok");
    await loadChecklist();
  }

  function pickChecklistDate() {
    const value = $("checklist-date").value;
    if (!value) return;
    state.checklistDate = value;
    loadChecklist();
  }

  // -- the suppression lists (GET/POST/DELETE /v1/suppressions, operators) -----------------

  const SUPP_PAGE = 50;
  const SUPP_FIELDS = {channel: "supp-add-channel", number: "supp-add-number",
    reason: "supp-add-reason"};

  async function loadSupp() {
    const s = state.supp;
    const query = new URLSearchParams({channel: s.channel, limit: String(SUPP_PAGE)});
    if (s.cursor) query.set("cursor", s.cursor);
    try {
      s.page = await api("GET", `/v1/suppressions?${query}`);
    } catch (err) {
      say(explain(err), "error");
      return;
    }
    renderSupp();
  }

  function suppPage(step) {
    const s = state.supp;
    if (!s.page) return;
    if (step > 0 && s.page.next_cursor) {
      s.cursors.push(s.cursor);
      s.cursor = s.page.next_cursor;
    } else if (step < 0 && s.cursors.length) {
      s.cursor = s.cursors.pop();
    } else {
      return;
    }
    loadSupp();
  }

  function sourceText(e) {
    return t(`supp.source.${e.source}`, {by: e.by || ""});
  }

  function renderSupp() {
    const s = state.supp;
    $("supp-channel").value = s.channel;
    const p = s.page;
    const channel = t(`channel.${s.channel}`);
    if (!p) {
      $("supp-rows").replaceChildren();
      return;
    }
    $("supp-summary").textContent = p.total ? t("supp.summary", {channel, n: number(p.total)})
      : t("supp.empty", {channel});
    $("supp-table-wrap").hidden = p.entries.length === 0;
    const first = s.cursors.length * SUPP_PAGE + 1;
    $("supp-caption").textContent = t("supp.caption", {from: number(first),
      to: number(first + p.entries.length - 1), total: number(p.total)});
    $("supp-rows").replaceChildren(...p.entries.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.number = e.number;
      cell(tr, e.number);
      cell(tr, e.reason, e.wave || "");
      cell(tr, sourceText(e));
      cell(tr, when(new Date(e.at * 1000).toISOString()));
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-quiet supp-remove";
      button.textContent = t("supp.remove");
      button.setAttribute("aria-label", t("supp.remove_label", {number: e.number}));
      button.addEventListener("click",
        () => askReason("unsuppress", undefined, {channel: e.channel, number: e.number}));
      td.append(button);
      tr.append(td);
      return tr;
    }));
    $("supp-prev").hidden = s.cursors.length === 0;
    $("supp-next").hidden = !p.next_cursor;
  }

  async function addSupp(event) {
    event.preventDefault();
    clearInvalid();
    const body = {channel: $("supp-add-channel").value,
      number: $("supp-add-number").value.trim(), reason: $("supp-add-reason").value.trim()};
    for (const [field, id] of [["number", "supp-add-number"], ["reason", "supp-add-reason"]]) {
      if (!body[field]) {
        $(id).setAttribute("aria-invalid", "true");
        $(id).focus();
        return;
      }
    }
    let added;
    try {
      added = await api("POST", "/v1/suppressions", body);
    } catch (err) {
      say(explain(err), "error");
      markInvalid(err, SUPP_FIELDS);
      return;
    }
    $("supp-add-form").reset();
    $("supp-add-channel").value = added.channel;
    say(t("supp.added", {number: added.number, channel: t(`channel.${added.channel}`)}), "ok");
    state.supp = {channel: added.channel, cursor: "", cursors: [], page: null};
    loadSupp();
  }

  async function exportSupp() {
    const channel = state.supp.channel;
    let r;
    try {
      r = await fetch(`/v1/suppressions.csv?channel=${encodeURIComponent(channel)}`, {
        headers: {"Authorization": `Bearer ${state.token}`}, cache: "no-store",
        credentials: "omit", redirect: "error"});
    } catch (e) {
      say(explain(new ApiError(0, null)), "error");
      return;
    }
    if (!r.ok) {
      say(explain(new ApiError(r.status, null)), "error");
      return;
    }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await r.blob());
    link.download = `suppressions-${channel}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // -- start --------------------------------------------------------------------------------

  function wire() {
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        say(t("auth.empty"), "error");
        $("token").focus();
        return;
      }
      signIn(token, false);
    });
    $("signout").addEventListener("click", () => signOut());
    $("lang-switch").addEventListener("click", () => setLanguage(state.lang === "vi" ? "en" : "vi", true));
    window.addEventListener("hashchange", () => route(true));
    $("level-form").addEventListener("submit", submitLevel);
    $("pending-form").addEventListener("submit", confirmLevel);
    $("texts-form").addEventListener("submit", submitText);
    $("texts-more").addEventListener("click", () => loadTexts(true));
    $("situation-form").addEventListener("submit", submitSituation);
    $("situation-form").addEventListener("input", () => { state.situationDirty = true; });
    $("situation-form").addEventListener("change", () => { state.situationDirty = true; });
    $("situation-field-add").addEventListener("click", () => {
      state.situationDirty = true;
      addFieldRow("", "").focus();
    });
    $("recipient-form").addEventListener("submit", lookUpRecipient);
    $("incoming-channel").addEventListener("change", () => incomingFrom(0));
    $("incoming-refresh").addEventListener("click", () => incomingFrom(0));
    $("incoming-next").addEventListener("click", () => incomingFrom(1));
    $("incoming-prev").addEventListener("click", () => incomingFrom(-1));
    $("checklist-date").addEventListener("change", pickChecklistDate);
    $("checklist-refresh").addEventListener("click", () => loadChecklist());
    $("checklist-today").addEventListener("click", () => {
      state.checklistDate = "";
      loadChecklist();
    });
    $("done-form").addEventListener("submit", submitDone);
    $("done-no").addEventListener("click", () => closeDone());
    $("done-dialog").addEventListener("cancel", (event) => {
      event.preventDefault();
      closeDone();
    });
    $("supp-add-form").addEventListener("submit", addSupp);
    $("supp-channel").addEventListener("change", () => {
      state.supp = {channel: $("supp-channel").value, cursor: "", cursors: [], page: null};
      loadSupp();
    });
    $("supp-next").addEventListener("click", () => suppPage(1));
    $("supp-prev").addEventListener("click", () => suppPage(-1));
    $("supp-export").addEventListener("click", exportSupp);
    $("dead-next").addEventListener("click", () => deadPage(1));
    $("dead-prev").addEventListener("click", () => deadPage(-1));
    $("dead-replay").addEventListener("click", () => askReason("replay"));
    for (const id of ["level-by-cases", "level-by-level"]) $(id).addEventListener("change", switchLevelBy);
    $("level-cases-input").addEventListener("input", updateCasesHint);
    document.addEventListener("input", (event) => event.target.removeAttribute("aria-invalid"));
    document.addEventListener("change", (event) => event.target.removeAttribute("aria-invalid"));
    $("new-form").addEventListener("input", formChanged);
    $("new-form").addEventListener("change", formChanged);
    $("new-form").addEventListener("submit", submitCampaign);
    $("new-preview").addEventListener("click", runPreview);
    $("new-list-upload").addEventListener("click", uploadList);
    $("new-list-clear").addEventListener("click", clearList);
    $("new-list-pick").addEventListener("change", pickList);
    $("cancel-yes").addEventListener("click", () => closeCancel(true));
    $("cancel-no").addEventListener("click", () => closeCancel(false));
    $("cancel-dialog").addEventListener("cancel", (event) => {
      event.preventDefault();
      closeCancel(false);
    });
    $("stop-open").addEventListener("click", () => askReason("stop"));
    $("stop-lift").addEventListener("click", () => askReason("lift"));
    $("reason-form").addEventListener("submit", submitReason);
    $("reason-no").addEventListener("click", () => closeReason());
    $("reason-dialog").addEventListener("cancel", (event) => {
      event.preventDefault();
      closeReason();
    });
  }

  async function start() {
    wire();
    try {
      await loadDictionaries();
    } catch (e) {
      $("load-failed").hidden = false;  // its text came with the page
      return;
    }
    setLanguage(sessionStorage.getItem(LANG_KEY) || "vi", false);
    resetNewForm();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) await signIn(token, true);
    if (!state.me) $("token").focus();
  }

  start();
})();
