//! Which upstream serves which path, read from the compiled protocol descriptors, so adding an
//! RPC (or a service) to a routed package needs no gateway change.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

use prost::Message;
use prost_types::FileDescriptorSet;

use crate::config::Config;
use crate::upstream_proxy::{ForwardPolicy, Upstream, UpstreamProxy};

/// The proto packages the gateway routes, and which upstream owns each.
pub(crate) const USER_PACKAGE: &str = "parley.user.v1";
pub(crate) const CHAT_PACKAGE: &str = "parley.chat.v1";

/// The gRPC side of the gateway after tonic-web has turned gRPC-web into gRPC.
pub(crate) type GrpcService = BoxCloneService<http::Request<Body>, http::Response<Body>, Infallible>;

/// The protocol descriptors the gateway knows, decoded once.
pub(crate) struct Descriptors {
    set: FileDescriptorSet,
}

impl Descriptors {
    pub(crate) fn decode(encoded: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(Self {
            set: FileDescriptorSet::decode(encoded)?,
        })
    }

    /// Every service of `package` with its methods, as (full service name, methods).
    fn services_of(&self, package: &str) -> Vec<(String, Vec<MethodShape>)> {
        self.set
            .file
            .iter()
            .filter(|file| file.package() == package)
            .flat_map(|file| {
                file.service.iter().map(|service| {
                    let full = format!("{package}.{}", service.name());
                    let methods = service
                        .method
                        .iter()
                        .map(|m| MethodShape {
                            path: format!("/{full}/{}", m.name()),
                            unary: !m.client_streaming() && !m.server_streaming(),
                        })
                        .collect();
                    (full, methods)
                })
            })
            .collect()
    }

    /// The descriptors minus the packages nobody outside may see (parley.llm.v1).
    fn public_only(&self, public_packages: &HashSet<&str>) -> FileDescriptorSet {
        FileDescriptorSet {
            file: self
                .set
                .file
                .iter()
                .filter(|f| !f.package().starts_with("parley.") || public_packages.contains(f.package()))
                .cloned()
                .collect(),
        }
    }
}

struct MethodShape {
    path: String,
    unary: bool,
}

/// Routed services, keyed by full service name, with the upstream that serves each.
pub(crate) struct RouteTable {
    services: BTreeMap<String, Upstream>,
    packages: Vec<String>,
    unary_methods: HashSet<String>,
    streaming_methods: HashSet<String>,
}

impl RouteTable {
    pub(crate) fn new(descriptors: &Descriptors, packages: &[(&str, &Upstream)]) -> Self {
        let mut services = BTreeMap::new();
        let mut unary_methods = HashSet::new();
        let mut streaming_methods = HashSet::new();
        for (package, upstream) in packages {
            for (service, methods) in descriptors.services_of(package) {
                for method in methods {
                    if method.unary {
                        unary_methods.insert(method.path);
                    } else {
                        streaming_methods.insert(method.path);
                    }
                }
                services.insert(service, (*upstream).clone());
            }
        }
        Self {
            services,
            packages: packages.iter().map(|(p, _)| (*p).to_string()).collect(),
            unary_methods,
            streaming_methods,
        }
    }

    /// The routed methods that stream (SendMessage, WatchGeneration …).
    pub(crate) fn streaming_methods(&self) -> HashSet<String> {
        self.streaming_methods.clone()
    }

    /// The routed unary methods.
    pub(crate) fn unary_methods(&self) -> HashSet<String> {
        self.unary_methods.clone()
    }

    pub(crate) fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// The services this gateway answers: the routed ones, health and reflection.
    pub(crate) fn known_services(&self) -> HashSet<String> {
        self.service_names()
            .chain(GATEWAY_SERVICES.iter().copied())
            .map(str::to_string)
            .collect()
    }

    /// The routed service names grouped by the upstream serving them.
    pub(crate) fn services_by_upstream(&self) -> Vec<(Upstream, Vec<String>)> {
        let mut grouped: Vec<(Upstream, Vec<String>)> = Vec::new();
        for (service, upstream) in &self.services {
            match grouped.iter_mut().find(|(u, _)| u.name() == upstream.name()) {
                Some((_, names)) => names.push(service.clone()),
                None => grouped.push((upstream.clone(), vec![service.clone()])),
            }
        }
        grouped
    }

    /// Adds one route per service to tonic's routes, keeping tonic's fallback so anything
    /// unknown (parley.llm.v1 included) answers UNIMPLEMENTED.
    pub(crate) fn into_router(self, routes: tonic::service::Routes, config: &Config) -> tonic::service::Routes {
        let policy = Arc::new(ForwardPolicy {
            unary_methods: self.unary_methods,
            unary_timeout: config.unary_timeout,
            max_message_bytes: config.max_message_bytes,
        });
        let mut router = routes.into_axum_router();
        for (service, upstream) in self.services {
            router = router.route_service(
                &format!("/{service}/{{*method}}"),
                UpstreamProxy::new(upstream, policy.clone()),
            );
        }
        tonic::service::Routes::from(router)
    }
}

/// Adds reflection (v1 and v1alpha, as grpcurl and buf curl use either) listing the routed
/// services and health, with the descriptors of public packages only.
pub(crate) fn add_reflection(
    routes: tonic::service::Routes,
    descriptors: &Descriptors,
    table: &RouteTable,
) -> Result<tonic::service::Routes, tonic_reflection::server::Error> {
    let public: HashSet<&str> = table.packages.iter().map(String::as_str).collect();
    let build = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(descriptors.public_only(&public))
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in table.service_names() {
            builder = builder.with_service_name(name);
        }
        builder
    };
    Ok(routes
        .add_service(build().build_v1()?)
        .add_service(build().build_v1alpha()?))
}

/// The methods of the gateway's own services (metrics label them by name).
pub(crate) const GATEWAY_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

const GATEWAY_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Sends calls for services the gateway does not answer (parley.llm.v1, typos) straight to
/// tonic's fallback, UNIMPLEMENTED, before auth and limits: such a service looks the same to
/// everyone, signed in or not.
#[derive(Clone)]
pub(crate) struct KnownServices {
    known: Arc<HashSet<String>>,
    guarded: GrpcService,
    fallback: tonic::service::Routes,
}

impl KnownServices {
    pub(crate) fn new(known: HashSet<String>, guarded: GrpcService, fallback: tonic::service::Routes) -> Self {
        Self {
            known: Arc::new(known),
            guarded,
            fallback,
        }
    }
}

impl Service<http::Request<Body>> for KnownServices {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = request.uri().path().split('/').nth(1).unwrap_or_default();
        // Awaited ready before the call, as in `FrontDoor`.
        if self.known.contains(service) {
            Box::pin(self.guarded.clone().oneshot(request))
        } else {
            Box::pin(self.fallback.clone().oneshot(request))
        }
    }
}
