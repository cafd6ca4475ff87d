package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki writes a CA and a certificate and key signed by it for each name.
func pki(t *testing.T, dir string, names ...string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, c, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
}

func TestTLSClientCert(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir, "server", "bridge")
	p := func(n string) string { return filepath.Join(dir, n) }
	srv := startNATS(t, natsConf{Extra: fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
		p("server.pem"), p("server-key.pem"), p("ca.pem"))})
	base := Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: testBus(t)}

	good := base
	good.TLS = TLS{CAFile: p("ca.pem"), CertFile: p("bridge.pem"), KeyFile: p("bridge-key.pem")}
	b, err := New(good)
	if err != nil {
		t.Fatalf("TLS with a client certificate: %v", err)
	}
	b.Close()

	for name, tls := range map[string]TLS{
		"no TLS":              {},
		"no client cert":      {CAFile: p("ca.pem")},
		"server not verified": {CertFile: p("bridge.pem"), KeyFile: p("bridge-key.pem")},
	} {
		cfg := base
		cfg.TLS = tls
		if _, err := New(cfg); !errors.Is(err, ErrConnect) {
			t.Errorf("%s: %v, want ErrConnect", name, err)
		}
	}
}
