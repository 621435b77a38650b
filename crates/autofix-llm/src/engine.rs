//! [`LlmDiagnoser`]: the whole chain for one incident. Each step asks up to `max_iterations`
//! times, feeding refused replies back; the steps are the primary model, the fallback model,
//! then a narrower scope (one container, one field); after them, an escalation summarising
//! every try. Every request and its outcome is recorded as an [`Attempt`].

use crate::LlmError;
use crate::config::LlmConfig;
use crate::patch::{self, MAX_CHANGES, PatchReply, PatchScope};
use crate::prompt::Ask;
use crate::transport::BoundedRetry;
use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use autofix_core::error::with_causes;
use autofix_core::{Action, Alternative, Attempt, Diagnosis, Evidence, Finding, Remediation};
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Name of the `response_format` schema.
const SCHEMA_NAME: &str = "autofix_patch";

/// A step of the fallback chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The configured model, the whole pod template.
    Primary,
    /// The cheaper model, the whole pod template.
    FallbackModel,
    /// The primary model, one container and one field.
    NarrowScope,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Primary => "primary",
            Stage::FallbackModel => "fallback-model",
            Stage::NarrowScope => "narrow-scope",
        }
    }
}

/// Diagnoses incidents with an OpenAI-compatible chat model.
pub struct LlmDiagnoser {
    config: LlmConfig,
    client: Client<Box<dyn Config>>,
}

impl std::fmt::Debug for LlmDiagnoser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmDiagnoser")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

/// The reply of one request, as far as the chain needs it.
struct Answer {
    content: Option<String>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl LlmDiagnoser {
    /// A diagnoser for `config` (checked here) authenticating with `api_key`.
    pub fn new(config: LlmConfig, api_key: SecretString) -> Result<LlmDiagnoser, LlmError> {
        config
            .check()
            .map_err(|(field, reason)| LlmError::Config { field, reason })?;
        // reqwest is built without a crypto provider: use ring, like the rest of the workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|source| LlmError::HttpClient { source })?;
        let key = api_key.expose_secret();
        let base = config.base_url.trim_end_matches('/');
        let provider: Box<dyn Config> = match &config.azure {
            Some(azure) => Box::new(
                AzureConfig::new()
                    .with_api_base(base)
                    .with_deployment_id(&azure.deployment)
                    .with_api_version(&azure.api_version)
                    .with_api_key(key),
            ),
            None => Box::new(OpenAIConfig::new().with_api_base(base).with_api_key(key)),
        };
        let transport = BoundedRetry::new(
            http.clone(),
            config.max_retries,
            Duration::from_millis(config.max_retry_wait_ms),
        );
        let client = Client::build(http, provider).with_http_service(transport);
        Ok(LlmDiagnoser { config, client })
    }

    /// The whole chain for one incident; never fails: on exhaustion answers an escalation whose
    /// reason summarises what was tried. `rules` = the rule diagnosis, given to the model as
    /// evidence.
    pub async fn diagnose_with(&self, evidence: &Evidence, rules: &Diagnosis) -> Diagnosis {
        let mut attempts = Vec::new();
        let narrow = rules
            .container
            .clone()
            .or_else(|| evidence.container.clone())
            .or_else(|| first_container(evidence));
        let mut steps = vec![(Stage::Primary, self.config.model.clone(), None)];
        if let Some(model) = &self.config.fallback_model {
            steps.push((Stage::FallbackModel, model.clone(), None));
        }
        if let Some(container) = narrow {
            steps.push((
                Stage::NarrowScope,
                self.config.model.clone(),
                Some(container),
            ));
        }
        for (stage, model, container) in steps {
            let ask = Ask {
                evidence,
                rules,
                only_container: container.as_deref(),
                max_tokens: self.config.max_prompt_tokens,
            };
            if let Some(reply) = self.step(stage, &model, &ask, &mut attempts).await {
                return accepted(evidence, rules, &model, reply, attempts);
            }
        }
        exhausted(rules, &self.config.model, attempts)
    }

    /// One step of the chain: up to `max_iterations` requests, each refusal fed back. A failed
    /// call ends the step (the provider is down or the model errs).
    async fn step(
        &self,
        stage: Stage,
        model: &str,
        ask: &Ask<'_>,
        attempts: &mut Vec<Attempt>,
    ) -> Option<(PatchReply, patch::CheckedPatch)> {
        let scope = PatchScope {
            object: &ask.evidence.workload_object,
            kind: ask.evidence.workload.kind,
            only_container: ask.only_container,
            max_changes: if ask.only_container.is_some() {
                1
            } else {
                MAX_CHANGES
            },
        };
        let mut messages: Vec<(&'static str, String)> =
            vec![("system", ask.system()), ("user", ask.user())];
        for _ in 0..self.config.max_iterations {
            let started = Instant::now();
            let answer = self.request(model, &messages).await;
            let mut attempt = Attempt {
                name: format!("llm/{model}"),
                agent: "llm".to_string(),
                iteration: u32::try_from(attempts.len() + 1).unwrap_or(u32::MAX),
                stage: stage.as_str().to_string(),
                outcome: String::new(),
                error: None,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                prompt_tokens: None,
                completion_tokens: None,
                prompt: Some(render(&messages)),
                reply: None,
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    attempt.outcome = "error".to_string();
                    attempt.error = Some(with_causes(&e));
                    attempts.push(attempt);
                    return None;
                }
            };
            attempt.prompt_tokens = answer.prompt_tokens;
            attempt.completion_tokens = answer.completion_tokens;
            attempt.reply = answer.content.clone();
            let checked = match answer.content.as_deref() {
                None => Err(vec!["the reply has no content".to_string()]),
                Some(text) => patch::parse_reply(text)
                    .map_err(|e| vec![e])
                    .and_then(|reply| scope.check(&reply).map(|c| (reply, c))),
            };
            match checked {
                Ok(ok) => {
                    attempt.outcome = "accepted".to_string();
                    attempts.push(attempt);
                    return Some(ok);
                }
                Err(errors) => {
                    attempt.outcome = "invalid".to_string();
                    attempt.error = Some(errors.join("; "));
                    attempts.push(attempt);
                    messages.push(("assistant", answer.content.unwrap_or_default()));
                    messages.push(("user", feedback(&errors)));
                }
            }
        }
        None
    }

    /// Sends one chat completion with the strict patch schema.
    async fn request(
        &self,
        model: &str,
        messages: &[(&'static str, String)],
    ) -> Result<Answer, LlmError> {
        let request = CreateChatCompletionRequest {
            model: model.to_string(),
            messages: messages
                .iter()
                .map(|(role, text)| message(role, text))
                .collect(),
            temperature: Some(self.config.temperature),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: Some("A patch of the workload's pod template.".to_string()),
                    name: SCHEMA_NAME.to_string(),
                    schema: patch::patch_schema(),
                    strict: Some(true),
                },
            }),
            ..Default::default()
        };
        let response = self
            .client
            .chat()
            .create(request)
            .await
            .map_err(|source| LlmError::Provider { source })?;
        let choice = response.choices.into_iter().next();
        let content = choice.and_then(|c| {
            c.message
                .content
                .or(c.message.refusal.map(|r| format!("(refusal) {r}")))
        });
        Ok(Answer {
            content,
            prompt_tokens: response.usage.as_ref().map(|u| u64::from(u.prompt_tokens)),
            completion_tokens: response
                .usage
                .as_ref()
                .map(|u| u64::from(u.completion_tokens)),
        })
    }
}

fn message(role: &str, text: &str) -> ChatCompletionRequestMessage {
    let text = text.to_string();
    match role {
        "system" => ChatCompletionRequestSystemMessage::from(
            ChatCompletionRequestSystemMessageContent::from(text),
        )
        .into(),
        "assistant" => ChatCompletionRequestAssistantMessage::from(
            ChatCompletionRequestAssistantMessageContent::from(text),
        )
        .into(),
        _ => ChatCompletionRequestUserMessage::from(ChatCompletionRequestUserMessageContent::from(
            text,
        ))
        .into(),
    }
}

/// The conversation as text, for the attempt's record.
fn render(messages: &[(&'static str, String)]) -> String {
    let mut out = String::new();
    for (role, text) in messages {
        let _ = write!(out, "[{role}]\n{text}\n\n");
    }
    out
}

/// What the model is told after a refused reply.
fn feedback(errors: &[String]) -> String {
    let list: Vec<String> = errors.iter().map(|e| format!("- {e}")).collect();
    format!(
        "Your reply was refused:\n{}\nAnswer again with one corrected JSON object following the schema.",
        list.join("\n")
    )
}

/// The first container of the workload's pod template.
fn first_container(evidence: &Evidence) -> Option<String> {
    let template = autofix_core::FieldPath::must(patch::template_prefix(evidence.workload.kind));
    template
        .key("spec")
        .key("containers")
        .get(&evidence.workload_object)?
        .get(0)?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

/// The diagnosis of an accepted reply: a PR when it has changes, else an escalation.
fn accepted(
    evidence: &Evidence,
    rules: &Diagnosis,
    model: &str,
    (reply, checked): (PatchReply, patch::CheckedPatch),
    attempts: Vec<Attempt>,
) -> Diagnosis {
    let source = format!("llm:{model}");
    let mut findings = rules.evidence.clone();
    findings.push(Finding::new(
        format!("{source}:reasoning"),
        reply.reasoning.clone(),
    ));
    findings.extend(
        reply
            .evidence
            .iter()
            .map(|e| Finding::new(source.clone(), e.clone())),
    );
    let fix = !checked.changes.is_empty();
    let strategy = if reply.fix_summary.trim().is_empty() {
        "patch proposed by the LLM".to_string()
    } else {
        reply.fix_summary.trim().to_string()
    };
    Diagnosis {
        category: checked.category,
        action: if fix { Action::Pr } else { Action::Escalate },
        workload: rules.workload.clone(),
        container: rules
            .container
            .clone()
            .or_else(|| evidence.container.clone()),
        summary: reply.root_cause.clone(),
        confidence: reply.confidence,
        evidence: findings,
        remediation: fix.then_some(Remediation {
            strategy,
            changes: checked.changes,
        }),
        escalation_reason: (!fix).then(|| {
            format!(
                "The LLM ({model}) found no change of the pod template that fixes this: {}",
                reply.reasoning
            )
        }),
        diagnoser: format!("llm/{model}"),
        attempts,
        // The rules' own fix, if they had one, competes with the model's patch.
        alternatives: rules
            .remediation
            .iter()
            .map(|r| Alternative {
                source: "rule".into(),
                remediation: r.clone(),
                confidence: rules.confidence,
            })
            .chain(rules.alternatives.iter().cloned())
            .collect(),
    }
}

/// The escalation after the chain ran out: the rules' diagnosis, with what was tried.
fn exhausted(rules: &Diagnosis, model: &str, attempts: Vec<Attempt>) -> Diagnosis {
    let mut reason = format!(
        "The LLM diagnosis produced no acceptable patch in {} attempt(s), so humans must act.\n\nTried:\n",
        attempts.len()
    );
    for a in &attempts {
        let _ = writeln!(
            reason,
            "- #{} `{}` ({}): {}{}",
            a.iteration,
            a.name,
            a.stage,
            a.outcome,
            a.error
                .as_deref()
                .map(|e| format!(": {}", short(e)))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        reason,
        "\nRules ({}): {}",
        rules.diagnoser,
        rules.escalation_reason.as_deref().unwrap_or(&rules.summary)
    );
    Diagnosis {
        action: Action::Escalate,
        remediation: None,
        escalation_reason: Some(reason),
        diagnoser: format!("llm/{model}"),
        attempts,
        ..rules.clone()
    }
}

/// An error message cut to one readable line of at most 300 characters.
fn short(text: &str) -> String {
    let line = text.replace('\n', " ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(299).collect::<String>())
    } else {
        line
    }
}
