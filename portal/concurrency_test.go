package portal_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// twoPortals opens one fresh database of backend b twice and serves a
// portal over each: two portal processes sharing one store.
func twoPortals(t *testing.T, b storetest.Backend) (a, z client) {
	t.Helper()
	dsn := storetest.NewDSN(t, b)
	var clients []client
	for range 2 {
		db, err := store.Open(t.Context(), store.Config{DSN: dsn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		clients = append(clients, start(t, db))
	}
	return clients[0], clients[1]
}

// race runs fn(i) for i in [0, n) at once and returns each call's error.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			errs[i] = fn(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
	return errs
}

// codes counts the Connect codes of errs ("ok" for nil) and keeps one
// message per code.
func codes(errs []error) (map[string]int, map[string]string) {
	count, msg := map[string]int{}, map[string]string{}
	for _, err := range errs {
		code := "ok"
		if err != nil {
			code = connect.CodeOf(err).String()
			msg[code] = err.Error()
		}
		count[code]++
	}
	return count, msg
}

// TestTwoPortalsOneStore: portals keep no state, so two of them over one
// store behave as one, even when they race for the same capacity.
func TestTwoPortalsOneStore(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			t.Parallel()
			pa, pb := twoPortals(t, b)
			portals := []client{pa, pb}

			// Each array has 2 vds of one cluster each, one per dn; each pd
			// holds exactly 10 of them.
			const daSize, vdCount, fit = 2 * vda.ClusterSize, 2, 10
			vd := vda.VDSize(daSize, vdCount)
			pdSize := uint64(vda.MiB)
			for vda.EstimatedLvstoreCapacity(pdSize)/vd < fit {
				pdSize += vda.MiB
			}
			capacity := vda.EstimatedLvstoreCapacity(pdSize)
			require.Equal(t, uint64(fit), capacity/vd)

			mkDn(t, pa, "d1", "a")
			mkDn(t, pa, "d2", "b")
			mkPd(t, pa, "d1", "p1", pdSize)
			mkPd(t, pa, "d2", "p1", pdSize)
			mkCn(t, pa, "c1", "")

			t.Run("B reads what A wrote", func(t *testing.T) {
				for _, dn := range []string{"d1", "d2"} {
					assert.True(t, proto.Equal(getDn(t, pa, dn), getDn(t, pb, dn)))
					assert.True(t, proto.Equal(getPd(t, pa, dn, "p1"), getPd(t, pb, dn, "p1")))
				}
				assert.True(t, proto.Equal(getCn(t, pa, "c1"), getCn(t, pb, "c1")))
			})

			t.Run("racing for capacity", func(t *testing.T) {
				const n = 16
				errs := race(n, func(i int) error {
					_, err := do(t, portals[i%2].CreateDa, daReq(fmt.Sprintf("da%02d", i), daSize, vdCount, 1))
					return err
				})
				count, msg := codes(errs)
				assert.Equal(t, map[string]int{"ok": fit, "resource_exhausted": n - fit}, count, "messages: %v", msg)
				assert.NotContains(t, count, "aborted", "retries ran out: %s", msg["aborted"])
				for _, err := range errs {
					if connect.CodeOf(err) == connect.CodeResourceExhausted {
						assert.ErrorContains(t, err, "with less than 4.0 MiB free")
					}
				}

				for _, p := range portals {
					for _, dn := range []string{"d1", "d2"} {
						pd := getPd(t, p, dn, "p1")
						assert.LessOrEqual(t, pd.GetAllocated(), pd.GetCapacity(), "pd %s over-committed", dn)
						assert.Equal(t, fit*vd, pd.GetAllocated(), dn)
						assert.Equal(t, uint32(fit), pd.GetVdCount(), dn)
						// Created, a pd, then one bump per array.
						assert.Equal(t, uint64(2+fit), getDn(t, p, dn).GetGeneration(), dn)
					}
					assert.Equal(t, uint64(1+fit), getCn(t, p, "c1").GetGeneration())
					s := summary(t, p)
					assert.Equal(t, uint32(fit), s.GetDaCount())
					assert.Equal(t, uint32(2*fit), s.GetVdCount())
					assert.Equal(t, 2*fit*vd, s.GetAllocated())
					assert.Equal(t, 2*(capacity-fit*vd), s.GetFree())
					assert.Len(t, must(t, p.ListDa, &vdav1.ListDaRequest{}).GetDas(), fit)
				}
				// Every array either side created reads the same through both.
				for i, err := range errs {
					if err == nil {
						name := fmt.Sprintf("da%02d", i)
						da := getDa(t, portals[(i+1)%2], name)
						assert.True(t, proto.Equal(getDa(t, portals[i%2], name), da))
						assert.NotEqual(t, da.GetVds()[0].GetDnName(), da.GetVds()[1].GetDnName())
					}
				}
			})

			t.Run("racing to release", func(t *testing.T) {
				das := must(t, pb.ListDa, &vdav1.ListDaRequest{}).GetDas()
				errs := race(len(das), func(i int) error {
					_, err := do(t, portals[i%2].DeleteDa, &vdav1.DeleteDaRequest{Name: das[i].GetName()})
					return err
				})
				count, msg := codes(errs)
				assert.Equal(t, map[string]int{"ok": fit}, count, "messages: %v", msg)
				for _, dn := range []string{"d1", "d2"} {
					pd := getPd(t, pa, dn, "p1")
					assert.Zero(t, pd.GetAllocated(), dn)
					assert.Zero(t, pd.GetVdCount(), dn)
					assert.Equal(t, uint64(2+2*fit), getDn(t, pb, dn).GetGeneration(), dn)
				}
				assert.Zero(t, summary(t, pa).GetAllocated())
			})

			t.Run("racing for one name", func(t *testing.T) {
				for round := range 4 {
					name := fmt.Sprintf("same%d", round)
					errs := race(2, func(i int) error {
						_, err := do(t, portals[i].CreateDn, &vdav1.CreateDnRequest{
							Name: name, AgentAddress: fmt.Sprintf("portal%d:1", i), Listener: tcp("10.0.0.9", 4420),
						})
						return err
					})
					count, msg := codes(errs)
					assert.Equal(t, map[string]int{"ok": 1, "already_exists": 1}, count, "round %d: %v", round, msg)
					assert.Contains(t, msg["already_exists"], "dn "+name)
					// The winner is what both portals read.
					winner := 0
					if errs[0] != nil {
						winner = 1
					}
					assert.Equal(t, fmt.Sprintf("portal%d:1", winner), getDn(t, pa, name).GetAgentAddress())
					assert.Equal(t, fmt.Sprintf("portal%d:1", winner), getDn(t, pb, name).GetAgentAddress())
				}
			})

			t.Run("racing for one device", func(t *testing.T) {
				for round := range 4 {
					path := fmt.Sprintf("/dev/disk%d", round)
					errs := race(2, func(i int) error {
						_, err := do(t, portals[i].CreatePd, &vdav1.CreatePdRequest{
							DnName: "d1", Name: fmt.Sprintf("aio%d-%d", round, i), Backend: aio(path),
						})
						return err
					})
					count, msg := codes(errs)
					assert.Equal(t, map[string]int{"ok": 1, "already_exists": 1}, count, "round %d: %v", round, msg)
					assert.Contains(t, msg["already_exists"], "already uses "+path)
				}
				assert.Equal(t, uint32(5), getDn(t, pb, "d1").GetPdCount())
			})

			t.Run("racing a delete", func(t *testing.T) {
				// A create that read a row a concurrent delete then removed
				// must run again on what is left: never a stray NotFound,
				// never the database's foreign-key text.
				mkPd(t, pa, "d1", "big", 4<<30) // room for the arrays below
				mkPd(t, pa, "d2", "big", 4<<30)
				for i := range 12 {
					name := func(s string) string { return fmt.Sprintf("%s%d", s, i) }
					mkDa(t, pa, name("ra"), daSize, 1, 1)
					// The emptiest pd draws the new array's vd, the cn without
					// load its controller.
					mkDn(t, pa, name("rd"), "c")
					mkPd(t, pa, name("rd"), "p", 8<<30)
					mkCn(t, pa, name("rc"), "")
					mkDn(t, pa, name("ed"), "") // no pds
					errs := race(7, func(j int) error {
						var err error
						switch j {
						case 0:
							_, err = do(t, pa.CreateDa, daReq(name("new"), daSize, 1, 1))
						case 1:
							_, err = do(t, pb.DeletePd, &vdav1.DeletePdRequest{DnName: name("rd"), Name: "p"})
						case 2:
							_, err = do(t, pb.DeleteCn, &vdav1.DeleteCnRequest{Name: name("rc")})
						case 3:
							_, err = do(t, pa.CreateExp, &vdav1.CreateExpRequest{DaName: name("ra"), Name: "e", HostNqn: hostNQN(i)})
						case 4:
							_, err = do(t, pb.DeleteDa, &vdav1.DeleteDaRequest{Name: name("ra")})
						case 5:
							_, err = do(t, pa.CreatePd, &vdav1.CreatePdRequest{DnName: name("ed"), Name: "q", Backend: malloc(1 << 30)})
						case 6:
							_, err = do(t, pb.DeleteDn, &vdav1.DeleteDnRequest{Name: name("ed")})
						}
						return err
					})
					assert.NoError(t, errs[0], "CreateDa has room elsewhere")
					allowed := []struct {
						code connect.Code
						msg  string
					}{
						{},
						{connect.CodeFailedPrecondition, fmt.Sprintf("pd p on dn %s holds 1 vd(s) of array(s) %s;", name("rd"), name("new"))},
						{connect.CodeFailedPrecondition, fmt.Sprintf("cn %s still holds 1 controller(s); delete their arrays first", name("rc"))},
						{connect.CodeNotFound, "da " + name("ra")},
						{connect.CodeFailedPrecondition, fmt.Sprintf("da %s still has 1 exporter(s); delete them first", name("ra"))},
						{connect.CodeNotFound, "dn " + name("ed")},
						{connect.CodeFailedPrecondition, fmt.Sprintf("dn %s still has 1 pd(s); delete them first", name("ed"))},
					}
					for j, err := range errs {
						if err == nil {
							continue
						}
						var ce *connect.Error
						if assert.ErrorAs(t, err, &ce) {
							assert.Equal(t, allowed[j].code, ce.Code(), "call %d: %v", j, err)
							assert.True(t, strings.HasPrefix(ce.Message(), allowed[j].msg), "call %d: %q, want %q", j, ce.Message(), allowed[j].msg)
						}
					}
					assert.True(t, (errs[3] == nil) != (errs[4] == nil), "one of CreateExp and DeleteDa: %v, %v", errs[3], errs[4])
					assert.True(t, (errs[5] == nil) != (errs[6] == nil), "one of CreatePd and DeleteDn: %v, %v", errs[5], errs[6])
				}
			})

			t.Run("racing for one host", func(t *testing.T) {
				mkDa(t, pa, "shared", daSize, vdCount, 1)
				errs := race(2, func(i int) error {
					_, err := do(t, portals[i].CreateExp, &vdav1.CreateExpRequest{DaName: "shared", Name: fmt.Sprintf("e%d", i), HostNqn: hostNQN(1)})
					return err
				})
				count, msg := codes(errs)
				assert.Equal(t, map[string]int{"ok": 1, "already_exists": 1}, count, "%v", msg)
				assert.Len(t, must(t, pb.ListExp, &vdav1.ListExpRequest{DaName: "shared"}).GetExps(), 1)
			})
		})
	}
}
