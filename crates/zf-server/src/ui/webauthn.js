// Security keys and passkeys in the browser: the only script the web UI serves. Each element
// marked data-webauthn runs one ceremony against the JSON API — fetch the options, let the
// browser talk to the authenticator, send back what it made — and then follows data-next.
// Binary members travel as base64url in both directions.
"use strict";

(function () {
  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var copy = Object.assign({}, d);
      copy.id = fromB64url(d.id);
      return copy;
    });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return { publicKey: pk };
  }

  function credentialJson(c) {
    var r = c.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return {
      id: c.id,
      rawId: toB64url(c.rawId),
      type: c.type,
      response: response,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      authenticatorAttachment: c.authenticatorAttachment || null,
    };
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!res.ok) {
          var message = json && json.error ? json.error.message : res.status + " " + res.statusText;
          throw new Error(message);
        }
        return json;
      });
    });
  }

  function status(el, text) {
    var out = document.getElementById(el.getAttribute("data-status") || "webauthn-status");
    if (out) out.textContent = text;
  }

  function fields(form) {
    var body = {};
    if (!form) return body;
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf") body[key] = value;
    });
    return body;
  }

  function run(el, form) {
    if (!window.PublicKeyCredential) {
      status(el, el.getAttribute("data-unsupported") || "WebAuthn is not supported here.");
      return;
    }
    var create = el.getAttribute("data-webauthn") === "create";
    status(el, el.getAttribute("data-working") || "…");
    post(el.getAttribute("data-options"), fields(form))
      .then(function (options) {
        return create
          ? navigator.credentials.create(creationOptions(options))
          : navigator.credentials.get(requestOptions(options));
      })
      .then(function (credential) {
        return post(el.getAttribute("data-finish"), { credential: credentialJson(credential) });
      })
      .then(function () {
        window.location.assign(el.getAttribute("data-next") || "/");
      })
      .catch(function (e) {
        status(el, (el.getAttribute("data-failed") || "") + " " + e.message);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var marked = document.querySelectorAll("[data-webauthn]");
    for (var i = 0; i < marked.length; i++) {
      (function (el) {
        el.hidden = false;
        if (el.tagName === "FORM") {
          el.addEventListener("submit", function (ev) {
            ev.preventDefault();
            run(el, el);
          });
        } else {
          el.addEventListener("click", function (ev) {
            ev.preventDefault();
            run(el, null);
          });
        }
      })(marked[i]);
    }
  });
})();
