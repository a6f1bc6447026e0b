//! Cold start: a new instance for a function version, from a stem cell
//! when one is ready or from a fresh sandbox otherwise, charged to the
//! host's memory budget; and the names of the sandboxes it creates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strato_model::FunctionConfig;
use strato_sandbox::SandboxMode;

use crate::instance::{self, Instance, InstanceSpec, StartError};
use crate::logs;
use crate::memory::MemoryCharge;
use crate::runtimes::{RUNTIME_DIR, TASK_ROOT};
use crate::stem::StemRefill;
use crate::{pool_key, Engine, EngineError, InvokeResponse, InvokeTarget, PlatformError};

/// The variable current AWS SDKs take their endpoint from.
const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// Sandbox ids carry the owning server's pid (`s<pid>-<random>`), so a
/// server can recognise sandboxes a crashed predecessor left behind.
pub(crate) fn sandbox_id(instance_id: &str) -> String {
    format!("s{}-{}", std::process::id(), &instance_id[..12])
}

/// True for a sandbox id whose owning process no longer exists.
pub(crate) fn is_orphan(sandbox: &str) -> bool {
    let Some(pid) = sandbox
        .strip_prefix('s')
        .and_then(|rest| rest.split('-').next())
    else {
        return false;
    };
    match pid.parse::<u32>() {
        Ok(pid) => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        Err(_) => false,
    }
}

impl Engine {
    /// Charges a new instance of `target` to the memory budget, ending the
    /// least recently used idle instances of other pools to make room.
    pub(crate) fn charge_memory(&self, target: &InvokeTarget) -> Result<MemoryCharge, EngineError> {
        let mb = u64::try_from(target.config.memory_size).unwrap_or(0);
        let own = pool_key(target);
        let full = || EngineError::MemoryBudgetFull {
            needed_mb: mb,
            used_mb: self.memory.used_mb(),
            budget_mb: self.memory.budget_mb(),
        };
        if mb > self.memory.budget_mb() {
            // Ending other instances could never make room.
            return Err(full());
        }
        loop {
            if let Some(charge) = self.memory.try_charge(mb) {
                return Ok(charge);
            }
            let victim = self
                .pools
                .iter()
                .filter(|p| *p.key() != own)
                .filter_map(|p| p.oldest_idle().map(|since| (since, p.value().clone())))
                .min_by_key(|(since, _)| *since);
            let Some((_, pool)) = victim else {
                return Err(full());
            };
            if let Some(instance) = pool.take_oldest() {
                tracing::info!(
                    instance = %instance.id,
                    "ending the least recently used idle instance: the memory budget is full"
                );
                drop(instance);
            }
        }
    }

    fn instance_env(
        &self,
        target: &InvokeTarget,
        log_stream: &str,
        initialization: &'static str,
        credentials: Option<&crate::InstanceCredentials>,
    ) -> BTreeMap<String, String> {
        let c = &target.config;
        let plan_env = self
            .runtimes
            .plan(c.runtime)
            .map(|p| p.env)
            .unwrap_or_default();
        let mut env: BTreeMap<String, String> = plan_env.into_iter().collect();
        if let Some(vars) = &c.environment {
            env.extend(vars.clone());
        }
        let reserved = [
            ("AWS_LAMBDA_FUNCTION_NAME", c.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", c.version.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_size.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", c.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", initialization.into()),
            ("AWS_REGION", target.region.clone()),
            ("AWS_DEFAULT_REGION", target.region.clone()),
            ("_HANDLER", c.handler.clone().unwrap_or_default()),
            ("LAMBDA_TASK_ROOT", TASK_ROOT.into()),
            ("LAMBDA_RUNTIME_DIR", RUNTIME_DIR.into()),
            ("TZ", ":UTC".into()),
        ];
        for (k, v) in reserved {
            env.insert(k.into(), v);
        }
        if let Some(credentials) = credentials {
            env.insert(
                "AWS_ACCESS_KEY_ID".into(),
                credentials.access_key_id.clone(),
            );
            env.insert(
                "AWS_SECRET_ACCESS_KEY".into(),
                credentials.secret_access_key.clone(),
            );
            env.insert(
                "AWS_SESSION_TOKEN".into(),
                credentials.session_token.clone(),
            );
        }
        // A function that sets AWS_ENDPOINT_URL to "" opts out of it: its
        // SDKs then address AWS's own host names, which isolated instances
        // resolve to Strato (see `dns`).
        let opted_out = env.get(ENDPOINT_URL).is_some_and(String::is_empty);
        if opted_out {
            env.remove(ENDPOINT_URL);
        } else if let Some(endpoint) = self.api_endpoint.get() {
            let url = match self.sandbox.mode() {
                SandboxMode::Strong => format!("http://{}", instance::INSTANCE_API_ADDR),
                SandboxMode::Fallback => endpoint.host_url.clone(),
            };
            env.insert(ENDPOINT_URL.into(), url);
        }
        env
    }

    /// The merged `/opt` tree of a version's layers (built once per ordered
    /// list of layer packages), or `None` without layers.
    async fn layers_dir(&self, c: &FunctionConfig) -> Result<Option<PathBuf>, StartError> {
        if c.layers.is_empty() {
            return Ok(None);
        }
        let code = self.code.clone();
        let ids: Vec<String> = c.layers.iter().map(|l| l.code.sha256_hex.clone()).collect();
        tokio::task::spawn_blocking(move || code.merged_layers(&ids))
            .await
            .map_err(|e| StartError::Platform(PlatformError::LayersTask(e)))?
            .map(Some)
            .map_err(|e| StartError::Platform(PlatformError::Layers(e)))
    }

    async fn cold_start(
        self: &Arc<Self>,
        target: &InvokeTarget,
        initialization: &'static str,
    ) -> Result<Instance, StartError> {
        let c = &target.config;
        let plan = self
            .runtimes
            .plan_for(c.runtime, c.handler.as_deref(), c.memory_size)
            .map_err(|source| {
                StartError::Platform(PlatformError::RuntimeUnavailable {
                    runtime: c.runtime,
                    source,
                })
            })?;
        let code = self.code.clone();
        let code_id = c.code.sha256_hex.clone();
        let code_dir = tokio::task::spawn_blocking(move || code.extract(&code_id))
            .await
            .map_err(|e| StartError::Platform(PlatformError::CodeTask(e)))?
            .map_err(|e| StartError::Platform(PlatformError::Code(e)))?;
        let opt_dir = self.layers_dir(c).await?;
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!(
            "{}/[{}]{}",
            chrono::Utc::now().format("%Y/%m/%d"),
            c.version,
            instance_id
        );
        // Minted here, once per instance (a stem cell gets them with the
        // rest of its environment at adoption); the instance is retired
        // before they expire.
        let lifetime = self.config.credentials_lifetime;
        let credentials = self
            .credential_issuer
            .get()
            .map(|issuer| issuer.issue(&target.account, &c.role, &c.name, lifetime));
        // Expiry is kept in whole seconds (as STS reports it), so it can
        // fall up to a second before `now + lifetime`: retire that much
        // earlier too, or a credential could expire on a usable instance.
        let retire_at = credentials.as_ref().map(|_| {
            let usable = lifetime
                .saturating_sub(crate::credentials_margin(lifetime) + Duration::from_secs(1));
            Instant::now() + usable
        });
        let env = self.instance_env(target, &log_stream, initialization, credentials.as_ref());
        let version = plan.version.clone();
        let spec = InstanceSpec {
            id: sandbox_id(&instance_id),
            code_dir,
            opt_dir,
            plan,
            memory_mb: c.memory_size,
            ephemeral_mb: c.ephemeral_storage,
            env,
            log_group: c.log_group.clone(),
            log_stream: log_stream.clone(),
            init_timeout: self.config.init_timeout
                // Positive after `max(1)`, so `unsigned_abs` is the value itself.
                + Duration::from_secs(c.timeout.max(1).unsigned_abs()),
        };
        // Which runtime ran is part of the record, as AWS's INIT_START line shows it.
        let logs = logs::owned_by(&self.logs, &target.account, &target.region);
        logs.append(
            &c.log_group,
            &log_stream,
            vec![logs::LogEvent {
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
                message: format!("INIT_START Runtime Version: {version}"),
            }],
        );
        let stem_pool = self.stem_pool_for(c);
        let cell = stem_pool.as_ref().and_then(|(_, cells)| cells.take());
        // The pool refills once the first invocation is answered (or the
        // start failed), so launching the replacement does not compete with
        // the function's init and first event for the CPU.
        let refill = stem_pool.map(|(key, cells)| StemRefill {
            engine: self.clone(),
            key,
            cells,
        });
        let adopted = match cell {
            Some(cell) => self.adopt_stem_cell(cell, c, &spec, &logs).await?,
            None => None,
        };
        let mut instance = match adopted {
            Some(instance) => instance,
            None => {
                Instance::start(
                    &self.sandbox,
                    logs,
                    spec,
                    self.instance_api(),
                    self.live.enter(),
                )
                .await?
            }
        };
        instance.stem_refill = refill;
        instance.retire_at = retire_at;
        Ok(instance)
    }

    /// What serves Strato's API inside an instance: only isolated instances
    /// get their own listener; the others reach the host's.
    pub(crate) fn instance_api(&self) -> Option<crate::ApiEndpoint> {
        match self.sandbox.mode() {
            SandboxMode::Strong => self.api_endpoint.get().cloned(),
            SandboxMode::Fallback => None,
        }
    }

    /// A fresh instance, or the answer a failed init gives the caller.
    pub(crate) async fn start_instance(
        self: &Arc<Self>,
        target: &InvokeTarget,
        request_id: &str,
        started: Instant,
        tail_log: bool,
        initialization: &'static str,
    ) -> Result<Result<Instance, InvokeResponse>, EngineError> {
        let charge = self.charge_memory(target)?;
        match self.cold_start(target, initialization).await {
            Ok(mut instance) => {
                instance.memory = Some(charge);
                Ok(Ok(instance))
            }
            Err(StartError::Platform(reason)) => Err(EngineError::Instance(reason)),
            Err(failure) => Ok(Err(
                self.init_failure(target, request_id, failure, started, tail_log)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_of_this_process_are_not_orphans() {
        let id = sandbox_id("0123456789abcdef0123456789abcdef");
        assert!(id.starts_with(&format!("s{}-", std::process::id())));
        assert!(!is_orphan(&id));
    }

    #[test]
    fn sandboxes_of_a_dead_process_are_orphans() {
        // Pids above the kernel's maximum (4194304) never exist.
        assert!(is_orphan("s4294967-0123456789ab"));
    }

    #[test]
    fn foreign_cgroup_names_are_left_alone() {
        assert!(!is_orphan("listen-27954-10"));
        assert!(!is_orphan("strato-abc"));
    }
}
