//! Authentication as a tower layer: every gRPC method that is not public needs
//! `authorization: Bearer <access token>`; the layer verifies it and puts the
//! [`AuthenticatedUser`] into the request extensions, or answers UNAUTHENTICATED (UNAVAILABLE
//! when the keys cannot be fetched) without calling the service. A revoked token (its sign-in
//! ended, or its account was deleted) is UNAUTHENTICATED too. Health and reflection are
//! always public.
//!
//! Internal methods (named with [`AuthLayer::service_methods`]) take a service token instead:
//! one whose scope is the method's; a user's access token is refused there, and a service
//! token is refused everywhere else (its type differs from an access token's).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::access_token::{AuthenticatedService, AuthenticatedUser, TokenError, TokenVerifier};

/// Path prefixes that never need a token.
const ALWAYS_PUBLIC_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

struct AuthPolicy {
    verifier: Arc<TokenVerifier>,
    public_methods: HashSet<String>,
    /// The audience service tokens must name (this service).
    service_audience: String,
    /// Internal method path → the scope its service token must carry.
    service_methods: HashMap<String, String>,
}

impl AuthPolicy {
    fn is_public(&self, path: &str) -> bool {
        self.public_methods.contains(path) || ALWAYS_PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
    }
}

/// The layer. `public_methods` are full paths such as `/parley.user.v1.UserService/Login`.
#[derive(Clone)]
pub struct AuthLayer {
    policy: Option<Arc<AuthPolicy>>,
}

impl AuthLayer {
    pub fn new<I, M>(verifier: Arc<TokenVerifier>, public_methods: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        let public_methods = public_methods.into_iter().map(Into::into).collect();
        Self {
            policy: Some(Arc::new(AuthPolicy {
                verifier,
                public_methods,
                service_audience: String::new(),
                service_methods: HashMap::new(),
            })),
        }
    }

    /// Methods (full paths) that take only a service token for `audience` with the scope
    /// given beside each, and no user's access token.
    pub fn service_methods<'a>(
        mut self,
        audience: &str,
        methods: impl IntoIterator<Item = &'a (&'a str, &'a str)>,
    ) -> Self {
        if let Some(policy) = self.policy.as_mut().and_then(Arc::get_mut) {
            policy.service_audience = audience.to_string();
            policy.service_methods.extend(
                methods
                    .into_iter()
                    .map(|(path, scope)| (path.to_string(), scope.to_string())),
            );
        }
        self
    }

    /// No authentication: for internal services reachable only from inside the deployment
    /// (llm-service), which carry no user identity.
    pub fn disabled() -> Self {
        Self { policy: None }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    policy: Option<Arc<AuthPolicy>>,
}

/// The status for a token that was not accepted. Keys that cannot be fetched say nothing
/// about the token, so the caller must not sign the user out: UNAVAILABLE, retried later.
fn refusal(error: TokenError) -> tonic::Status {
    match error {
        TokenError::KeysUnavailable => tonic::Status::unavailable(error.to_string()),
        TokenError::WrongScope => tonic::Status::permission_denied(error.to_string()),
        other => tonic::Status::unauthenticated(other.to_string()),
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        Box::pin(async move {
            let path = request.uri().path();
            let service_scope = policy.as_ref().and_then(|p| p.service_methods.get(path).cloned());
            if let (Some(policy), Some(scope)) = (policy.as_ref(), service_scope) {
                let verified = match bearer_token(request.headers()) {
                    None => Err(tonic::Status::unauthenticated("missing service token")),
                    Some(token) => policy
                        .verifier
                        .verify_service(token, &policy.service_audience, &scope)
                        .await
                        .map_err(refusal),
                };
                match verified {
                    Ok(service) => {
                        request.extensions_mut().insert::<AuthenticatedService>(service);
                    }
                    Err(status) => return Ok(status.into_http()),
                }
            } else if let Some(policy) = policy.filter(|p| !p.is_public(request.uri().path())) {
                let verified = match bearer_token(request.headers()) {
                    None => Err(tonic::Status::unauthenticated("missing access token")),
                    Some(token) => policy.verifier.verify(token).await.map_err(refusal),
                };
                match verified {
                    Ok(user) => {
                        tracing::Span::current().record("user_id", user.user_id);
                        request.extensions_mut().insert::<AuthenticatedUser>(user);
                    }
                    Err(status) => return Ok(status.into_http()),
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_token::{PublicKeySource, PublishedKeys};

    struct Down;

    #[tonic::async_trait]
    impl PublicKeySource for Down {
        async fn fetch(&self) -> Result<PublishedKeys, tonic::Status> {
            Err(tonic::Status::unavailable("user-service is restarting"))
        }
    }

    async fn answer(layer: &AuthLayer, authorization: Option<&str>) -> tonic::Code {
        let inner = tower::service_fn(|_request: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let mut service = layer.layer(inner);
        let mut request = http::Request::builder().uri("/parley.chat.v1.ChatService/ListSessions");
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request.body(()).unwrap_or_else(|e| panic!("{e}"));
        let response = service.call(request).await.unwrap_or_else(|e| match e {});
        tonic::Status::from_header_map(response.headers()).map_or(tonic::Code::Ok, |s| s.code())
    }

    /// A token with an EdDSA header and a key id, as user-service issues them.
    const TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.e30.c2ln";

    #[tokio::test]
    async fn keys_that_cannot_be_fetched_answer_unavailable_not_unauthenticated() {
        let layer = AuthLayer::new(
            Arc::new(TokenVerifier::with_source(Arc::new(Down))),
            Vec::<String>::new(),
        );
        assert_eq!(
            answer(&layer, Some(&format!("Bearer {TOKEN}"))).await,
            tonic::Code::Unavailable
        );
        // Without a token, or with garbage, it is still the caller's problem.
        assert_eq!(answer(&layer, None).await, tonic::Code::Unauthenticated);
        assert_eq!(
            answer(&layer, Some("Bearer not-a-jwt")).await,
            tonic::Code::Unauthenticated
        );
    }
}
