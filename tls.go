package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"sync/atomic"
	"time"
)

// certReloader serves a certificate that can be replaced while the server
// runs: a renewed certificate (certbot, cert-manager) takes effect on
// SIGHUP, for new handshakes, without dropping open connections.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string, cert *tls.Certificate) *certReloader {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	r.cert.Store(cert)
	return r
}

// reload reads the files again. On any error the previous certificate
// stays in use.
func (r *certReloader) reload() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, err
	}
	r.cert.Store(&c)
	return &c, nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// loadKeyPair reads a certificate and its key at startup, naming the
// setting that is at fault.
func loadKeyPair(certFile, keyFile, certName, keyName string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &configError{certName, err.Error()}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &configError{keyName, err.Error()}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &configError{certName + " and " + keyName, err.Error()}
	}
	return &c, nil
}

// notAfter is when the certificate expires, for the log.
func notAfter(c *tls.Certificate) string {
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if leaf == nil {
		return "unknown"
	}
	return leaf.NotAfter.UTC().Format(time.RFC3339)
}
