// A local OAuth2/OpenID Connect server standing in for the Amazon Cognito hosted UI in tests.
//
// It serves Cognito's paths (/oauth2/authorize, /oauth2/token, /oauth2/userInfo) on loopback,
// with oidc-provider's development login and consent pages. Any login name is accepted:
//   "alice"              -> alice@example.test, email_verified "true"
//   "bob@example.org"    -> bob@example.org,    email_verified "true"
//   "unverified-carol"   -> unverified-carol@example.test, email_verified "false"
// Claims are returned the way Cognito returns them (email_verified as a string).
//
// Configuration comes from the environment, set by the test that starts it:
//   OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI (comma-separated allowed).
import { randomBytes } from "node:crypto";

import Provider from "oidc-provider";

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

const port = Number(required("OIDC_PORT"));
const issuer = `http://127.0.0.1:${port}`;

function claimsFor(login) {
  const name = login.trim().toLowerCase();
  const email = name.includes("@") ? name : `${name}@example.test`;
  const local = email.split("@")[0];
  return {
    sub: login,
    email,
    email_verified: local.startsWith("unverified-") ? "false" : "true",
    given_name: local.charAt(0).toUpperCase() + local.slice(1),
    family_name: "Tester",
  };
}

const configuration = {
  clients: [
    {
      client_id: required("OIDC_CLIENT_ID"),
      client_secret: required("OIDC_CLIENT_SECRET"),
      redirect_uris: required("OIDC_REDIRECT_URI").split(","),
      response_types: ["code"],
      grant_types: ["authorization_code"],
      // Cognito's hosted UI takes the client secret in the token request body.
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  routes: {
    authorization: "/oauth2/authorize",
    token: "/oauth2/token",
    userinfo: "/oauth2/userInfo",
  },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["given_name", "family_name"],
  },
  features: {
    devInteractions: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  async findAccount(ctx, id) {
    // The dev login form puts the typed login name here; the account id is the login itself.
    const claims = claimsFor(id);
    return {
      accountId: id,
      async claims() {
        return claims;
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc stand-in listening on ${issuer}`);
});
