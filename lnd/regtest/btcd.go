package regtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/l402kit/l402kit/internal/testenv/images"
)

// chainRPC is a minimal JSON-RPC client for btcd, reached through its port
// published on 127.0.0.1. It exists instead of btcd's rpcclient because
// every call here must honour a context.
type chainRPC struct {
	url, user, pass string
	http            *http.Client
}

func newChainRPC(hostPort, user, pass string, certPEM []byte) (*chainRPC, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, fmt.Errorf("btcd rpc.cert holds no PEM certificate")
	}
	return &chainRPC{
		url:  "https://" + hostPort,
		user: user,
		pass: pass,
		http: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

func (c *chainRPC) call(ctx context.Context, method string, result any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("btcd %s: HTTP %d: %.200s", method, resp.StatusCode, raw)
	}
	if out.Error != nil {
		return fmt.Errorf("btcd %s: %s (code %d)", method, out.Error.Message, out.Error.Code)
	}
	if result != nil {
		return json.Unmarshal(out.Result, result)
	}
	return nil
}

// generate mines n blocks to btcd's --miningaddr.
func (c *chainRPC) generate(ctx context.Context, n int) error {
	// btcd mines in batches quickly, but one huge call could outlast the
	// HTTP timeout on a slow machine.
	for n > 0 {
		k := min(n, 200)
		if err := c.call(ctx, "generate", nil, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// height returns btcd's best block height.
func (c *chainRPC) height(ctx context.Context) (int64, error) {
	var h int64
	err := c.call(ctx, "getblockcount", &h)
	return h, err
}

// coinbase returns the coinbase transaction of the block at height.
func (c *chainRPC) coinbase(ctx context.Context, height int64) (*wire.MsgTx, error) {
	var hash string
	if err := c.call(ctx, "getblockhash", &hash, height); err != nil {
		return nil, err
	}
	var blockHex string
	if err := c.call(ctx, "getblock", &blockHex, hash, 0); err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(blockHex)
	if err != nil {
		return nil, err
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	return blk.Transactions[0], nil
}

func (c *chainRPC) sendRaw(ctx context.Context, tx *wire.MsgTx) (string, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return "", err
	}
	var txid string
	err := c.call(ctx, "sendrawtransaction", &txid, hex.EncodeToString(buf.Bytes()))
	return txid, err
}

// miner is the harness's own key: btcd pays block rewards to it
// (--miningaddr, as btcd has no generatetoaddress), and the harness signs
// their transfer to the payer's wallet itself.
type miner struct {
	key  *btcec.PrivateKey
	addr *btcutil.AddressPubKeyHash
}

func newMiner() (*miner, error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	addr, err := btcutil.NewAddressPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	return &miner{key: key, addr: addr}, nil
}

// spendCoinbase pays the first output of a mature coinbase (paid to the
// miner's P2PKH address) to address, less fee.
func (m *miner) spendCoinbase(cb *wire.MsgTx, address string, fee btcutil.Amount) (*wire.MsgTx, error) {
	dest, err := btcutil.DecodeAddress(address, &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	destScript, err := txscript.PayToAddrScript(dest)
	if err != nil {
		return nil, err
	}
	prevScript, err := txscript.PayToAddrScript(m.addr)
	if err != nil {
		return nil, err
	}
	out := cb.TxOut[0]
	if !bytes.Equal(out.PkScript, prevScript) {
		return nil, fmt.Errorf("coinbase output 0 does not pay the harness's mining address")
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(cb.TxHash()), 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(out.Value-int64(fee), destScript))
	sig, err := txscript.SignatureScript(tx, 0, prevScript, txscript.SigHashAll, m.key, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].SignatureScript = sig
	return tx, nil
}

func ptr(h chainhash.Hash) *chainhash.Hash { return &h }

func (n *LNDNet) startBTCD(ctx context.Context, m *miner) error {
	spec := images.BTCD()
	c, err := n.create(ctx, testcontainers.ContainerRequest{
		Image:          spec.Ref,
		Hostname:       "btcd",
		NetworkAliases: map[string][]string{n.net.Name: {"btcd"}},
		Entrypoint:     []string{spec.Entrypoint},
		Env:            map[string]string{"HOME": "/data"},
		Cmd: []string{
			"--regtest", "--txindex",
			"--datadir=/data/chain", "--logdir=/data/logs",
			"--rpccert=/data/rpc.cert", "--rpckey=/data/rpc.key",
			"--rpcuser=" + rpcUser, "--rpcpass=" + rpcPass,
			"--rpclisten=0.0.0.0:18334",
			"--miningaddr=" + m.addr.EncodeAddress(),
		},
		ExposedPorts: []string{"18334/tcp"},
		HostConfigModifier: func(hc *container.HostConfig) {
			publish(map[string]string{"18334/tcp": ""})(hc)
		},
		ConfigModifier: func(cfg *container.Config) { cfg.Hostname = "btcd" },
		WaitingFor:     wait.ForLog("RPC server listening on").WithStartupTimeout(time.Minute),
	})
	n.btcd = c
	if err != nil {
		return err
	}
	port, err := c.MappedPort(ctx, "18334/tcp")
	if err != nil {
		return err
	}
	cert, err := n.copyFrom(ctx, c, "/data/rpc.cert")
	if err != nil {
		return err
	}
	n.chain, err = newChainRPC("127.0.0.1:"+port.Port(), rpcUser, rpcPass, cert)
	return err
}
