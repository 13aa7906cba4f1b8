package token

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestCache checks that a verified token is not checked again, that an
// entry never outlives its token, and that the cache is bounded.
func TestCache(t *testing.T) {
	t.Parallel()
	now := testNow
	s := New(Options{Keys: parseKeys(t, newP256(t)), TTL: 2 * time.Hour, Issuer: testIssuer,
		Now: func() time.Time { return now }})
	if s.cache == nil || s.cache.max != DefaultCacheSize {
		t.Fatalf("CacheSize 0: a cache of %v, want DefaultCacheSize", s.cache)
	}
	token := mustSign(t, s, claimsFor("oCached"))
	if _, err := s.Verify(token); err != nil {
		t.Fatal(err)
	}
	if n := s.Cached(); n != 1 {
		t.Errorf("Cached() = %d after one Verify, want 1", n)
	}
	// With the keys gone, only the cache can answer.
	keys := s.keys
	s.keys = nil
	if c, err := s.Verify(token); err != nil || c.Subject != "oCached" || c.Expiry != testNow.Add(2*time.Hour).Unix() {
		t.Errorf("second Verify = %+v, %v; want the cached claims without a signature check", c, err)
	}
	if _, err := s.Verify(token + "A"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(another token) = %v, want %v: not answered from the cache", err, ErrInvalid)
	}
	now = testNow.Add(2*time.Hour + Leeway - time.Second)
	if _, err := s.Verify(token); err != nil {
		t.Errorf("Verify at exp + Leeway - 1s = %v, want the cached claims", err)
	}
	now = testNow.Add(2*time.Hour + Leeway)
	if _, err := s.Verify(token); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify at exp + Leeway = %v, want %v: an expired token answered from the cache", err, ErrInvalid)
	}
	if n := s.Cached(); n != 0 {
		t.Errorf("Cached() = %d after the token expired, want 0", n)
	}
	s.keys = keys
	if _, err := s.Verify(token); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(expired token) = %v, want %v", err, ErrInvalid)
	}
	if n := s.Cached(); n != 0 {
		t.Errorf("Cached() = %d after a refused token, want 0", n)
	}

	c := newCache(3)
	for i := range 10 {
		c.put(sha256.Sum256([]byte{byte(i)}), Claims{Subject: "o", Expiry: testNow.Unix() + 10})
	}
	if len(c.m) != 3 {
		t.Errorf("a cache of 3 holds %d after 10 puts", len(c.m))
	}
}

func TestCacheSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		size, want int // CacheSize, and Cached() after 5 tokens
	}{
		{-1, 0},
		{2, 2},
		{0, 5},
	} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			t.Parallel()
			s := New(Options{Keys: []*Key{hmacKey(t, testKey)}, TTL: time.Hour, Issuer: testIssuer, CacheSize: tt.size, Now: fixedClock(testNow)})
			for i := range 5 {
				token := mustSign(t, s, claimsFor(fmt.Sprint("o", i)))
				for range 2 {
					if c, err := s.Verify(token); err != nil || c.Subject != fmt.Sprint("o", i) {
						t.Fatalf("Verify(token %d) = %+v, %v", i, c, err)
					}
				}
			}
			if n := s.Cached(); n != tt.want {
				t.Errorf("CacheSize %d: Cached() = %d after 5 tokens, want %d", tt.size, n, tt.want)
			}
		})
	}
}

// TestCacheConcurrent verifies the same tokens from several goroutines,
// for the race detector.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	s := New(Options{Keys: []*Key{hmacKey(t, testKey)}, TTL: time.Hour, Issuer: testIssuer, CacheSize: 4, Now: fixedClock(testNow)})
	var tokens []string
	for i := range 8 {
		tokens = append(tokens, mustSign(t, s, claimsFor(fmt.Sprint("o", i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok := tokens[(g+i)%len(tokens)]
				if _, err := s.Verify(tok); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Verify = %v, want ok", err)
	}
	if n := s.Cached(); n > 4 {
		t.Errorf("Cached() = %d, want at most 4", n)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCache measures the verified-token cache: bytes per entry when
// full, and the heap after a million distinct tokens, which must stay
// within the cap (DefaultCacheSize entries). Each entry is what Verify
// keeps: the claims as read from a token's payload.
//
//	go test ./internal/token -run '^$' -bench Cache -benchtime 1x
func BenchmarkCache(b *testing.B) {
	for b.Loop() {
		before := heapInUse()
		c := newCache(DefaultCacheSize)
		var buf []byte
		for i := range 1_000_000 {
			n := strconv.Itoa(i)
			claims := Claims{Subject: "oBenchUser0123456789abcd" + n[len(n)-1:], UnionID: "oBenchUnion123456789abcd" + n[len(n)-1:],
				Audience: Audience{"wx0123456789abcdef"}, Issuer: "wxlogin", IssuedAt: testNow.Unix(), Expiry: testNow.Unix() + 7200,
				Phone: fmt.Sprintf("+861380013%04d", i%10000), PhoneVerified: true}
			buf = appendClaims(buf[:0], &claims)
			var got Claims
			if err := claimsReader.Read(buf, &got); err != nil {
				b.Fatal(err)
			}
			c.put(sha256.Sum256([]byte(n)), got)
		}
		after := heapInUse()
		if len(c.m) != DefaultCacheSize {
			b.Fatalf("the cache holds %d after 1M tokens, want its cap %d", len(c.m), DefaultCacheSize)
		}
		b.ReportMetric(float64(after-before)/float64(len(c.m)), "bytes/entry")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB-after-1M-tokens")
		runtime.KeepAlive(c)
		runtime.KeepAlive(buf)
	}
}
