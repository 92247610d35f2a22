// Passkey ceremonies (sign-in and registration). Served as a file: pages
// carry no inline script (the CSP is default-src 'self').
//
// Sign-in: #passkey-signin (on /signin, data-next) asks
// POST /signin/passkey/start for a discoverable challenge, lets the browser
// find a passkey for this site, and sends the assertion to
// POST /signin/passkey/finish, which sets the session cookie and answers
// {"redirect": next}.
//
// Registration: #passkey-register (on /me, data-csrf, name in
// #passkey-name) asks POST /api/v1/passkeys/register/start, creates a
// credential and sends it to POST /api/v1/passkeys/register/finish, then
// reloads /me. Progress and errors go to #passkey-status.
"use strict";

(function () {
  function toBytes(b64url) {
    var s = String(b64url).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function say(text) {
    var el = document.getElementById("passkey-status");
    if (el) {
      el.textContent = text;
    }
  }

  async function post(url, body, csrf) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    var resp = await fetch(url, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    var data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      var msg = data && (data.message || data.error) ? (data.message || data.error) : "HTTP " + resp.status;
      throw new Error(msg);
    }
    return data;
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var d = Object.assign({}, c);
      d.id = toBytes(c.id);
      return d;
    });
  }

  function supported() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser offers no passkeys here (they need https, or http://localhost).");
      return false;
    }
    return true;
  }

  async function signIn(button) {
    if (!supported()) {
      return;
    }
    button.disabled = true;
    try {
      say("Asking for a passkey…");
      var start = await post("/signin/passkey/start", {});
      var opts = Object.assign({}, start.publicKey);
      opts.challenge = toBytes(opts.challenge);
      opts.allowCredentials = descriptors(opts.allowCredentials);
      var cred = await navigator.credentials.get({ publicKey: opts });
      if (!cred) {
        throw new Error("no passkey was chosen");
      }
      say("Checking…");
      var r = cred.response;
      var done = await post("/signin/passkey/finish", {
        challenge_id: start.challenge_id,
        next: button.dataset.next || "/me",
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            authenticatorData: toB64url(r.authenticatorData),
            clientDataJSON: toB64url(r.clientDataJSON),
            signature: toB64url(r.signature),
            userHandle: r.userHandle ? toB64url(r.userHandle) : null,
          },
          extensions: {},
        },
      });
      say("Signed in.");
      window.location.assign(done.redirect || "/me");
    } catch (e) {
      say("Passkey sign-in failed: " + (e && e.message ? e.message : e));
      button.disabled = false;
    }
  }

  async function register(button) {
    if (!supported()) {
      return;
    }
    var csrf = button.dataset.csrf || "";
    var nameField = document.getElementById("passkey-name");
    var name = nameField && nameField.value.trim() ? nameField.value.trim() : "passkey";
    button.disabled = true;
    try {
      say("Creating a passkey…");
      var start = await post("/api/v1/passkeys/register/start", {}, csrf);
      var opts = Object.assign({}, start.publicKey);
      opts.challenge = toBytes(opts.challenge);
      opts.user = Object.assign({}, opts.user, { id: toBytes(opts.user.id) });
      opts.excludeCredentials = descriptors(opts.excludeCredentials);
      var cred = await navigator.credentials.create({ publicKey: opts });
      if (!cred) {
        throw new Error("no passkey was created");
      }
      say("Saving…");
      var r = cred.response;
      var ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
      await post("/api/v1/passkeys/register/finish", {
        challenge_id: start.challenge_id,
        name: name,
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: toB64url(r.attestationObject),
            clientDataJSON: toB64url(r.clientDataJSON),
            transports: r.getTransports ? r.getTransports() : null,
          },
          // Only what the server reads; unsigned, informative.
          extensions: ext && ext.credProps ? { credProps: ext.credProps } : {},
        },
      }, csrf);
      say("Passkey registered.");
      window.location.assign("/me");
    } catch (e) {
      say("Passkey registration failed: " + (e && e.message ? e.message : e));
      button.disabled = false;
    }
  }

  // Delegated, and wired once: pages are swapped in by htmx (hx-boost)
  // without running their scripts, and the script may be on a page twice.
  if (window.flywheelPasskeys) {
    return;
  }
  window.flywheelPasskeys = true;
  document.addEventListener("click", function (ev) {
    var t = ev.target instanceof Element ? ev.target : null;
    var s = t && t.closest("#passkey-signin");
    if (s && !s.disabled) {
      ev.preventDefault();
      signIn(s);
      return;
    }
    var r = t && t.closest("#passkey-register");
    if (r && !r.disabled) {
      ev.preventDefault();
      register(r);
    }
  });
})();
