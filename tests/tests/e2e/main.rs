//! The end-to-end suite: one test binary, so that its tests share one pool of test threads
//! (`E2E_THREADS`) and one link, instead of nineteen binaries run one after another.
//! Each module is one area; tests whose name starts with `serial_` restart or reconfigure the
//! operator and run alone afterwards (tests/env/run/run-e2e.sh).

// The redaction corpus's sample format, shared with the operator's unit tests.
#[path = "../../../operator/testdata/redaction-corpus/samples.rs"]
mod corpus_format;

mod api_faults;
mod auto_bundles;
mod aws_roles;
mod azure_identities;
mod bundle;
mod causes;
mod crd_upgrade;
mod damage;
mod data_mover;
mod data_mover_causes;
mod diagnosis;
mod diagnosis_infra;
mod diagnosis_scenarios;
mod environment;
mod faults;
mod generated_specs;
mod hostile_input;
mod image;
mod install;
mod kubectl_plugin;
mod monitoring;
mod operator_restart;
mod orphans;
mod proxies;
mod real_failures;
mod real_node;
mod report;
mod request_counts;
mod seeded_corpus;
mod serve;
mod site_rules;
mod stalls;
mod storage_providers;
mod temporary_credentials;
mod tls;
mod uninstall;
