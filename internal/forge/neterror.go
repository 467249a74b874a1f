package forge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
)

// Unreachable explains why a request to a host's API got no answer — DNS, TLS trust, a
// certificate for another name, plain HTTP on a TLS port, a timeout, a refused connection —
// as a diagnosis check's detail and hint. api is the URL that was called; product names the
// host in the hints ("GitHub", "Gitea"). Every driver's Diagnose uses it, so that the same
// failure reads the same on every host.
func Unreachable(err error, api, product string) (detail, hint string) {
	host := api
	if u, perr := url.Parse(api); perr == nil && u.Host != "" {
		host = u.Host
	}
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var verifyErr *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return "DNS: cannot resolve " + host, "check the base URL's host name, and that Forgeway's host can resolve it (DNS, /etc/hosts, proxy settings)"
	case errors.As(err, &unknownCA) || (errors.As(err, &verifyErr) && errors.As(verifyErr.Err, &unknownCA)):
		return "TLS: " + host + "'s certificate is signed by an authority Forgeway does not trust",
			"add the CA that signed " + product + "'s certificate to the integration's TLS trust (settings.ca_bundle, PEM), or fix the server's certificate chain"
	case errors.As(err, &hostErr):
		return "TLS: " + host + "'s certificate is not valid for that name", "use the host name the certificate was issued for, or reissue the certificate with it"
	case errors.As(err, &invalid):
		return "TLS: " + host + "'s certificate is invalid (" + invalid.Error() + ")", "renew the server's certificate, or check this host's clock"
	case errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS: " + host + " did not answer TLS", "the server speaks plain HTTP on that port: use http://, or the HTTPS port"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return "timeout: " + host + " did not answer in time", "check that " + product + " is up and that no firewall or proxy drops Forgeway's connections"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "connection: cannot connect to " + host + " (" + opErr.Err.Error() + ")", "check the host and port, that " + product + " is running, and firewalls between Forgeway and it"
	}
	return "cannot reach " + host + ": " + StripURL(err).Error(), "check the base URL and the network between Forgeway and " + product
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
