package gateway

import (
	"net/http/httptest"
	"testing"

	"github.com/switchboard/switchboard/state/embedded"
)

func TestReadyzWhileDraining(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := New(Config{}, Deps{Store: store})
	s.draining.Store(true)
	res, err := s.app.Test(httptest.NewRequest("GET", "/readyz", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || !res.Close {
		t.Fatalf("draining readyz: %d, close=%v", res.StatusCode, res.Close)
	}
}
