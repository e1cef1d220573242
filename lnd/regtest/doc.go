// Package regtest runs real LND nodes on a private btcd regtest chain in
// containers, for conformance.Run and proxytest.RunFlow and for
// anyone's own integration tests.
//
// StartLND starts btcd, Alice (the LND node under test) and Bob (an LND
// node that pays Alice's invoices), funds Bob, opens a channel Bob→Alice
// and waits until it is active. Images are built locally by
// internal/testenv/images ("make images"); StartLND builds missing ones itself only
// with WithBuild or L402KIT_REGTEST_BUILD=1, and otherwise reports
// ErrNoImages. L402KIT_LND_IMAGE and L402KIT_BTCD_IMAGE name other images,
// such as official ones, to run instead.
//
// Testcontainers is used with its reaper disabled and the Docker host
// forced to 127.0.0.1 (TESTCONTAINERS_RYUK_DISABLED=true,
// TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 are set when unset), since the
// reaper image cannot be pulled everywhere and the host guessed inside a
// container can be an address that is not ours. Containers are reached only
// through ports published on 127.0.0.1, and Close removes every container
// and network the harness made.
//
// Require turns "no Docker engine" and "images not built" into a skip that
// says so, or into a failure when L402KIT_REQUIRE_REGTEST=1.
package regtest
