// Security keys and passkeys (WebAuthn). A form marked data-webauthn="create"
// (add a key) or "get" (log on with a key) has a button; on click this script
// asks the server for the ceremony options (POST data-begin with the form's
// CSRF token), lets the browser talk to the key, and submits the form with
// the key's answer as JSON in the hidden "credential" field. Binary fields
// travel as base64url both ways. No inline script: the page's CSP allows
// only scripts from this site.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: fromB64url(d.id) };
      if (d.transports) { out.transports = d.transports; }
      return out;
    });
  }

  // creationOptions and requestOptions turn the server's JSON into what
  // navigator.credentials expects.
  function creationOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = fromB64url(pk.challenge);
    if (pk.allowCredentials) { pk.allowCredentials = descriptors(pk.allowCredentials); }
    return pk;
  }

  function credentialJSON(cred) {
    var r = cred.response, resp = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      resp.attestationObject = toB64url(r.attestationObject);
      if (typeof r.getTransports === "function") { resp.transports = r.getTransports(); }
    } else {
      resp.authenticatorData = toB64url(r.authenticatorData);
      resp.signature = toB64url(r.signature);
      if (r.userHandle) { resp.userHandle = toB64url(r.userHandle); }
    }
    var out = { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: resp, clientExtensionResults: {} };
    if (typeof cred.getClientExtensionResults === "function") { out.clientExtensionResults = cred.getClientExtensionResults(); }
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    return JSON.stringify(out);
  }

  function setup(form) {
    var mode = form.getAttribute("data-webauthn");
    var button = form.querySelector("button[type=button]");
    var status = form.querySelector(".webauthn-status");
    var field = form.querySelector("input[name=credential]");
    if (!button || !field || (mode !== "create" && mode !== "get")) { return; }
    function say(key) { if (status) { status.textContent = status.getAttribute("data-" + key) || ""; } }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("unsupported");
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      if (mode === "create" && !form.reportValidity()) { return; }
      button.disabled = true;
      say("busy");
      var body = new URLSearchParams();
      body.set("csrf", form.querySelector("input[name=csrf]").value);
      fetch(form.getAttribute("data-begin"), {
        method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (res) {
        if (!res.ok) { throw new Error("options: " + res.status); }
        return res.json();
      }).then(function (opts) {
        if (mode === "create") {
          return navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) });
        }
        return navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) });
      }).then(function (cred) {
        if (!cred) { throw new Error("no credential"); }
        field.value = credentialJSON(cred);
        form.submit();
      }).catch(function () {
        say("cancelled");
        button.disabled = false;
        button.focus();
      });
    });
  }

  var forms = document.querySelectorAll("form[data-webauthn]");
  for (var i = 0; i < forms.length; i++) { setup(forms[i]); }
})();
