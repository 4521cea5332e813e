//! Prints the DebugBundle CRD as YAML; `make crd` writes it to deploy/crd.yaml.
fn main() {
    print!("{}", velero_debug_crd::crd_yaml());
}
