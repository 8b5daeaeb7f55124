package replication

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Region identity under mutual TLS. A CA that signs every region's nodes
// would otherwise let any of them claim any region in its Hello: the
// region id a stream claims must be the one its verified certificate
// names. A node certificate names its region with one URI subject
// alternative name, RegionURIPrefix followed by the decimal id, which
// OpenSSL sets with subjectAltName=URI:concord://region/2. The same rule
// holds the other way: a shipper checks the server it reached names the
// region it meant to reach.

// RegionURIPrefix starts the URI SAN naming a certificate's region.
const RegionURIPrefix = "concord://region/"

// Identity errors.
var (
	// ErrNoRegionIdentity: the certificate names no region, or several.
	ErrNoRegionIdentity = errors.New("replication: certificate does not name exactly one region (URI SAN " + RegionURIPrefix + "<id>)")
	// ErrWrongRegion: the certificate names another region than the one
	// claimed or meant.
	ErrWrongRegion = errors.New("replication: certificate names another region")
)

// CertRegion returns the region a node certificate names.
func CertRegion(c *x509.Certificate) (uint32, error) {
	var found []uint32
	for _, u := range c.URIs {
		s := u.String()
		if !strings.HasPrefix(s, RegionURIPrefix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimPrefix(s, RegionURIPrefix), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%w: bad region URI %q", ErrNoRegionIdentity, s)
		}
		found = append(found, uint32(id))
	}
	if len(found) != 1 {
		return 0, ErrNoRegionIdentity
	}
	return found[0], nil
}

// checkCertRegion checks that the verified leaf names region want.
func checkCertRegion(leaf *x509.Certificate, want uint32) error {
	got, err := CertRegion(leaf)
	if err != nil {
		return fmt.Errorf("%w (subject %q)", err, leaf.Subject.CommonName)
	}
	if got != want {
		return fmt.Errorf("%w: %q names region %d, not %d", ErrWrongRegion, leaf.Subject.CommonName, got, want)
	}
	return nil
}

// clientRegion checks that the verified client certificate of the stream
// in ctx names region claimed; the error is a PermissionDenied status.
func clientRegion(ctx context.Context, claimed uint32) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.PermissionDenied, "replication: no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return status.Error(codes.PermissionDenied, "replication: stream has no verified client certificate")
	}
	if err := checkCertRegion(ti.State.VerifiedChains[0][0], claimed); err != nil {
		return status.Errorf(codes.PermissionDenied, "replication: stream claims region %d: %v", claimed, err)
	}
	return nil
}

// serverRegionTLS returns base made to accept only a server whose
// verified certificate names region want. It runs after the usual chain
// and host name checks, which fill VerifiedChains.
func serverRegionTLS(base *tls.Config, want uint32, onRefuse func(error)) *tls.Config {
	c := base.Clone()
	prev := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
			return errors.New("replication: server certificate not verified")
		}
		err := checkCertRegion(cs.VerifiedChains[0][0], want)
		if err != nil {
			err = fmt.Errorf("server of region %d: %w", want, err)
			onRefuse(err)
		}
		return err
	}
	return c
}
