package cluster

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
)

// LoadTLS builds the TLS configurations for traffic between nodes from PEM
// files: server (for Config.ServerTLS) presents the certificate chain and
// key; client (for Config.ClientTLS) checks the peers' certificates
// against caFile ("" means the system's roots). Every node normally uses
// one certificate whose names (or IP addresses) cover the internal
// addresses, signed by a private CA.
func LoadTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: TLS certificate: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("cluster: TLS CA %s holds no PEM certificate", caFile)
		}
		client.RootCAs = pool
	}
	return server, client, nil
}

// GossipKey derives the ring's gossip encryption key (ring.Config.SecretKey,
// base64 of 32 bytes) from the cluster secret, so one secret in the
// configuration protects both the gossip and the internal logins. The
// derivation is fixed: nodes of one cluster must agree on it.
func GossipKey(secret string) string {
	sum := sha256.Sum256([]byte("nfsimap gossip key\x00" + secret))
	return base64.StdEncoding.EncodeToString(sum[:])
}
