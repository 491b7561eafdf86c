// Node.js clients against the lab, driven through the sign-in pages by the test's browser.
// Run by tests/tests/tenant_clients.rs:  node clients.mjs msal-code|oidc '<lab info JSON>'
// - msal-code: @azure/msal-node's PublicClientApplication: getAuthCodeUrl with PKCE, then
//   acquireTokenByCode with the code the browser was sent back with (read from stdin);
// - oidc: openid-client's discovery, authorization code flow with PKCE and state, the ID
//   token checked against the JWKS, then fetchUserInfo.
// Each prints its question as a JSON line, then "N checks passed".
import readline from "node:readline";

const [mode, infoText] = process.argv.slice(2);
const t = JSON.parse(infoText).tenant;
const redirectUri = "http://localhost:53198";
const scopes = ["User.Read"];
let checks = 0;

function check(ok, what, detail = "") {
  if (!ok) {
    console.log("FAIL", what, typeof detail === "string" ? detail : JSON.stringify(detail));
    process.exit(1);
  }
  checks += 1;
  console.log("ok  ", what);
}

const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

async function me(accessToken) {
  const r = await fetch(`${t.graph}/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
  const body = await r.json();
  check(r.status === 200 && body.userPrincipalName.toLowerCase() === "user1@testlab.example", "Graph /me", body);
}

if (mode === "msal-code") {
  const msal = await import("@azure/msal-node");
  const host = new URL(t.authority).host;
  const pca = new msal.PublicClientApplication({ auth: { clientId: t.client_id, authority: t.authority, knownAuthorities: [host] } });
  const { verifier, challenge } = await new msal.CryptoProvider().generatePkceCodes();
  const state = "msal-node-state";
  const url = await pca.getAuthCodeUrl({ scopes, redirectUri, codeChallenge: challenge, codeChallengeMethod: "S256", state });
  check(url.includes("code_challenge="), "msal-node asks with PKCE");
  console.log(JSON.stringify({ auth_uri: url }));
  const landed = new URL(await nextLine());
  check(landed.searchParams.get("state") === state, "the state comes back");
  const result = await pca.acquireTokenByCode({ code: landed.searchParams.get("code"), scopes, redirectUri, codeVerifier: verifier });
  check(result.account.username.toLowerCase() === "user1@testlab.example", "the account", result.account);
  check(result.idTokenClaims.tid === t.tenant_id, "the ID token's tenant", result.idTokenClaims);
  await me(result.accessToken);
  const silent = await pca.acquireTokenSilent({ account: result.account, scopes });
  check(Boolean(silent.accessToken), "a silent token from the cache");
} else if (mode === "oidc") {
  const client = await import("openid-client");
  const issuer = new URL(`${t.authority}/v2.0`);
  const config = await client.discovery(issuer, t.client_id, undefined, client.None());
  const meta = config.serverMetadata();
  for (const k of ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint", "device_authorization_endpoint", "jwks_uri"]) {
    check(typeof meta[k] === "string", `discovery names ${k}`);
  }
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile User.Read",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  console.log(JSON.stringify({ auth_uri: url.href }));
  const landed = new URL(await nextLine());
  const tokens = await client.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims();
  check(claims.preferred_username.toLowerCase() === "user1@testlab.example", "the ID token (signature, issuer, audience, nonce checked)", claims);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(info.sub === claims.sub && info.name === claims.name, "userinfo names the same subject", info);
  await me(tokens.access_token);
  const logout = client.buildEndSessionUrl(config, { post_logout_redirect_uri: redirectUri, id_token_hint: tokens.id_token });
  const r = await fetch(logout, { redirect: "manual" });
  check(r.status === 302 && r.headers.get("location").startsWith(redirectUri), "end_session sends back to the app", String(r.status));
} else {
  console.log(`unknown mode ${mode}`);
  process.exit(2);
}
console.log(`${checks} checks passed`);
process.exit(0);
