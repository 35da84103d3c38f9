// Command clusterbench drives the many-hosts test bed of
// scripts/cluster-test.sh: `clusterbench ferret` serves FerretDB on a TCP
// address inside its network namespace, and `clusterbench run` forwards the
// user database across the bridge, applies a mixed sync/async load through
// the load balancer, injects faults (NATS leaders, workers, an API node's
// link, scale out and in) and prints what every request got, the peak of
// user database connections and the recovery time after each fault.
package main
