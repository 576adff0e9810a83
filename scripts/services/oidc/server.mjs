// A real OpenID Connect provider for Latchkey's single sign-on tests (panva/oidc-provider).
// Env: OIDC_PORT (9400), OIDC_ISSUER (http://127.0.0.1:$OIDC_PORT),
//      OIDC_REDIRECT_URI (http://127.0.0.1:8080/sign-in/oidc/callback; comma-separated list allowed)
// Client pam-web also accepts http://127.0.0.1:ANY-PORT/sign-in/oidc/callback: test servers
// listen on a port chosen when they start.
// devInteractions: built-in login + consent pages that accept ANY username with ANY non-empty password;
// the username becomes `sub`. Users whose name starts with "admin" get groups ["pam-admins"].
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9400);
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const redirectUris = (process.env.OIDC_REDIRECT_URI || 'http://127.0.0.1:8080/sign-in/oidc/callback').split(',');
const loopbackCallback = /^http:\/\/127\.0\.0\.1:[0-9]{1,5}\/sign-in\/oidc\/callback$/;

const configuration = {
  clients: [
    {
      client_id: 'pam-web',
      client_secret: 'pam-web-secret',
      redirect_uris: redirectUris,
      post_logout_redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'pam-svc',
      client_secret: 'pam-svc-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  // put the claims into the ID token too (default: only at userinfo)
  conformIdTokenClaims: false,
  pkce: { required: () => false },
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, ClientCredentials: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@pam.test`,
          email_verified: true,
          name: id,
          preferred_username: id,
          groups: id.startsWith('admin') ? ['pam-admins'] : ['pam-users'],
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
const registeredOnly = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  if (this.clientId === 'pam-web' && loopbackCallback.test(value)) return true;
  return registeredOnly.call(this, value);
};
provider.proxy = true;
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
