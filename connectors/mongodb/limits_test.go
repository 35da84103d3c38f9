package mongodb

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// TestByteCap: 10 MiB of documents come back cut at a whole document below
// connectors.MaxResultBytes, as valid JSON marked truncated; a single
// document over the cap gives an empty truncated array.
func TestByteCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	big := strings.Repeat("x", 1<<20)
	docs := make([]any, 10)
	for i := range docs {
		docs[i] = d("i", int32(i), "pad", big)
	}
	if _, err := e.db.Collection("big").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection("huge").InsertOne(ctx, d("pad", strings.Repeat("y", 5<<20))); err != nil {
		t.Fatal(err)
	}
	s := e.open(false)
	cases := []struct {
		params string
		rows   int
	}{
		{`{"collection": "big", "sort": {"i": 1}}`, 3},
		{`{"collection": "big", "pipeline": [{"$sort": {"i": 1}}]}`, 3},
		{`{"collection": "huge"}`, 0},
	}
	for _, c := range cases {
		start := time.Now()
		res := run(t, s, "DB_QUERY", c.params, lim)
		if time.Since(start) > 15*time.Second {
			t.Errorf("%s took %v", c.params, time.Since(start))
		}
		if len(res.Body) > connectors.MaxResultBytes || !json.Valid(res.Body) {
			t.Fatalf("%s: body of %d bytes (valid %v), cap %d", c.params, len(res.Body), json.Valid(res.Body), connectors.MaxResultBytes)
		}
		got := rows(t, res.Body)
		if !res.Truncated || res.RowCount != c.rows || len(got) != c.rows {
			t.Errorf("%s → %d rows (body %d), truncated=%v; want %d, true", c.params, res.RowCount, len(got), res.Truncated, c.rows)
		}
		for i, r := range got {
			if r["i"] != json.Number(string(rune('0'+i))) {
				t.Errorf("%s: row %d is i=%v", c.params, i, r["i"])
			}
		}
	}
	// Under the cap nothing changes.
	res := run(t, s, "DB_QUERY", `{"collection": "big", "filter": {"i": {"$lt": 2}}}`, lim)
	if res.Truncated || res.RowCount != 2 {
		t.Errorf("2 documents → %d rows, truncated=%v", res.RowCount, res.Truncated)
	}
}

func TestHostCap(t *testing.T) {
	t.Parallel()
	hosts := make([]string, MaxHosts+1)
	for i := range hosts {
		hosts[i] = "h" + strconv.Itoa(i) + ".example.com"
	}
	for _, uri := range []string{
		"mongodb://u:pw@" + strings.Join(hosts, ",") + "/db",
	} {
		err := Driver{}.Validate(connectors.Params{ConnectionString: uri})
		if connectors.KindOf(err) != connectors.KindInput || err == nil || len(err.Error()) > 80 || strings.Contains(err.Error(), "pw") {
			t.Errorf("%.50s… → %v, want a short KindInput refusal", uri, err)
		}
	}
	ok := "mongodb://u:pw@" + strings.Join(hosts[:MaxHosts], ",") + "/db"
	if err := (Driver{}).Validate(connectors.Params{ConnectionString: ok}); err != nil {
		t.Errorf("%d hosts → %v", MaxHosts, err)
	}
}

// fakeMongo is a hostile MongoDB: it answers each connection's first
// message (the hello handshake) with hello, or with hostile when helloToo,
// and every later message with hostile. A nil hostile answers {ok: 1}.
func fakeMongo(t *testing.T, hello bson.D, hostile func(requestID int32) []byte, helloToo bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				for i := 0; ; i++ {
					var head [16]byte
					if _, err := io.ReadFull(c, head[:]); err != nil {
						return
					}
					size := int64(binary.LittleEndian.Uint32(head[:4]))
					if _, err := io.CopyN(io.Discard, c, size-16); err != nil {
						return
					}
					id := int32(binary.LittleEndian.Uint32(head[4:8]))
					var out []byte
					switch {
					case (i > 0 || helloToo) && hostile != nil:
						out = hostile(id)
					case i == 0:
						out = opMsg(id, hello)
					default:
						out = opMsg(id, d("ok", 1.0))
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// opMsg encodes an OP_MSG reply holding doc.
func opMsg(responseTo int32, doc bson.D) []byte {
	body, err := bson.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return wireHeader(len(body)+21, responseTo, 2013, append([]byte{0, 0, 0, 0, 0}, body...))
}

func wireHeader(size int, responseTo, opCode int32, rest []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(responseTo))
	b = binary.LittleEndian.AppendUint32(b, uint32(opCode))
	return append(b, rest...)
}

func helloDoc(extra ...any) bson.D {
	return append(d("ok", 1.0, "isWritablePrimary", true, "maxWireVersion", int32(21), "minWireVersion", int32(0),
		"maxBsonObjectSize", int32(16<<20), "maxWriteBatchSize", int32(100000)), d(extra...)...)
}

// TestHostileServer: declared lengths that would make the driver allocate
// hundreds of megabytes fail promptly. Not parallel, so that the allocation
// count is this test's alone.
func TestHostileServer(t *testing.T) {
	// A hello reply raising maxMessageSizeBytes lets the driver accept (and
	// allocate) any length up to 2 GiB; the wire guard refuses.
	bigLimit := helloDoc("maxMessageSizeBytes", int32(1<<31-1), "compression", bson.A{"zlib"})
	zlibBody := []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}
	cases := []struct {
		name     string
		hostile  func(id int32) []byte
		helloToo bool
		want     string
	}{
		// The driver refuses this one itself too (48 MB before hello sets a
		// limit): "length of read message too large".
		{"2 GiB length at hello", func(id int32) []byte { return wireHeader(1<<31-1, id, 2013, nil) }, true, ""},
		{"400 MB length after hello", func(id int32) []byte { return wireHeader(400_000_000, id, 2013, nil) }, false, "message length 400000000"},
		{"negative length", func(id int32) []byte { return wireHeader(-5, id, 2013, nil) }, false, "message length -5"},
		{"length below a header", func(id int32) []byte { return wireHeader(8, id, 2013, nil) }, false, "message length 8"},
		{"400 MB uncompressed", func(id int32) []byte {
			rest := binary.LittleEndian.AppendUint32(nil, 2013)
			rest = binary.LittleEndian.AppendUint32(rest, 400_000_000)
			rest = append(append(rest, 2), zlibBody...)
			return wireHeader(16+len(rest), id, opCompressed, rest)
		}, false, "uncompressed length 400000000"},
		// The driver checks BSON lengths against the message: no allocation.
		{"2 GiB BSON document", func(id int32) []byte {
			doc := binary.LittleEndian.AppendUint32(nil, 1<<31-1)
			doc = append(doc, 0x10, 'o', 'k', 0, 1, 0, 0, 0, 0)
			return wireHeader(21+len(doc), id, 2013, append([]byte{0, 0, 0, 0, 0}, doc...))
		}, false, ""},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range cases {
		addr := fakeMongo(t, bigLimit, c.hostile, c.helloToo)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		o := testOptions(true)
		o.ConnectTimeout = time.Second
		start := time.Now()
		s, err := Driver{}.Open(ctx, connectors.Params{ConnectionString: "mongodb://" + addr + "/db?compressors=zlib"}, o)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		if k := connectors.KindOf(err); k != connectors.KindUnavailable && k != connectors.KindQuery {
			t.Errorf("%s: %v (kind %d)", c.name, err, k)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Open took %v", c.name, d)
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Errorf("the hostile replies made the process allocate %d MiB", grown>>20)
	}
}

// TestServerCap: a hello reply listing 100 replica set members makes the
// driver dial at most MaxServers of them.
func TestServerCap(t *testing.T) {
	t.Parallel()
	members := bson.A{}
	for i := range 100 {
		members = append(members, "127.0.0.1:"+strconv.Itoa(1+i))
	}
	var mu sync.Mutex
	dialled := map[string]bool{}
	o := testOptions(true)
	o.ConnectTimeout = time.Second
	inner := o.Dial
	o.Dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		dialled[a] = true
		mu.Unlock()
		return inner(ctx, network, a)
	}
	seed := fakeMongo(t, helloDoc("setName", "rs", "hosts", members), nil, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s, err := (Driver{}).Open(ctx, connectors.Params{ConnectionString: "mongodb://" + seed + "/db"}, o); err == nil {
		s.Close() // the seed is not among the members, so Open usually fails
	}
	time.Sleep(time.Second) // let the monitors of the members dial
	mu.Lock()
	n := len(dialled)
	mu.Unlock()
	if n > MaxServers || n < 10 {
		t.Errorf("the driver dialled %d distinct addresses; want between 10 and %d", n, MaxServers)
	}
}
