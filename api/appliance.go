package api

import "time"

// ApplianceImport is one appliance of a factory import. Secret is the
// per-appliance key provisioned at the factory (base64, 32 to 64 bytes):
// the appliance signs frames and derives pairing codes and its MQTT
// password from it.
type ApplianceImport struct {
	Serial   string `json:"serial"`
	Model    string `json:"model"`
	Firmware string `json:"firmware,omitempty"`
	Secret   string `json:"secret"`
}

// ImportAppliancesRequest is the body of POST /v1/appliances (admin).
type ImportAppliancesRequest struct {
	Appliances []ApplianceImport `json:"appliances"`
}

// Appliance is a registered appliance as the API shows it; its secret is
// never shown.
type Appliance struct {
	ID        string     `json:"id"`
	Serial    string     `json:"serial"`
	Model     string     `json:"model"`
	Firmware  string     `json:"firmware,omitempty"`
	OwnerID   string     `json:"owner_id,omitempty"`
	PairedAt  *time.Time `json:"paired_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// ImportAppliancesResult answers a factory import: the appliances created,
// and the serials that were already registered (skipped, unchanged).
type ImportAppliancesResult struct {
	Created []Appliance `json:"created"`
	Skipped []string    `json:"skipped,omitempty"`
}

// PairRequest is the body of POST /v1/appliances/pair: the serial and the
// code the appliance shows. FactoryReset says the code is the one a freshly
// reset appliance shows, which proves physical possession and transfers
// ownership away from a previous owner.
type PairRequest struct {
	Serial       string `json:"serial"`
	Code         string `json:"code"`
	FactoryReset bool   `json:"factory_reset,omitempty"`
}

// RelayToken is the phone's credential for one appliance: an access token
// with role device, scoped to that appliance and its owner.
type RelayToken struct {
	Token     string    `json:"relay_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PairResult answers a successful pairing.
type PairResult struct {
	Appliance Appliance `json:"appliance"`
	RelayToken
}

// SignedFrame is one diagnostic frame as the appliance signed it. Frame is
// base64 (standard, padded) of the frame's JSON bytes exactly as signed;
// Sig is base64 of HMAC-SHA256(secret, "sbframe1." + those bytes). The
// phone relays both untouched: it cannot read a secret, so it cannot forge
// or alter a frame.
type SignedFrame struct {
	Frame string `json:"frame"`
	Sig   string `json:"sig"`
}

// Frame is the content of a SignedFrame: what the appliance measured.
type Frame struct {
	Serial     string             `json:"serial"`
	Seq        uint64             `json:"seq"`
	At         time.Time          `json:"at"`
	Readings   map[string]float64 `json:"readings,omitempty"`
	FaultCodes []string           `json:"fault_codes,omitempty"`
}

// DiagnosticsBatch is the body of POST /v1/appliances/{id}/diagnostics.
type DiagnosticsBatch struct {
	Frames []SignedFrame `json:"frames"`
}

// DiagnosticsResult says what became of a batch: frames written, and
// frames already received before (dropped, so a retry is harmless).
type DiagnosticsResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// RelayBatch is one message the phone sends on the relay WebSocket (GET
// /v1/appliances/{id}/relay): the body of POST .../diagnostics plus an ID
// of the client's choosing (at most 64 characters), echoed in the reply,
// so a client with several batches in flight can match the answers.
type RelayBatch struct {
	ID     string        `json:"id,omitempty"`
	Frames []SignedFrame `json:"frames"`
}

// RelayMessage types.
const (
	RelayReply   = "reply"
	RelayCommand = "command"
)

// RelayMessage is one message the gateway sends on the relay WebSocket:
// the reply to a batch (Type "reply", the batch's ID, and Result or
// Problem, as POST .../diagnostics would have answered), or a command for
// the appliance (Type "command"), handed out once as GET .../commands does.
type RelayMessage struct {
	Type    string             `json:"type"`
	ID      string             `json:"id,omitempty"`
	Result  *DiagnosticsResult `json:"result,omitempty"`
	Problem *Problem           `json:"problem,omitempty"`
	Command *Command           `json:"command,omitempty"`
}

// CommandSelfTest asks an appliance to run its self-test and report the
// result as diagnostics.
const CommandSelfTest = "self_test"

// Command is an instruction to an appliance, delivered over MQTT
// (appliances/{serial}/commands), pushed on the relay WebSocket, or
// fetched by the relaying phone. Sig is
// base64 of HMAC-SHA256(secret, "sbcmd1." + id + "." + kind + "." + issued
// at in Unix seconds), so the appliance can tell it came from us.
type Command struct {
	ID          string    `json:"id"`
	ApplianceID string    `json:"appliance_id"`
	Serial      string    `json:"serial"`
	Kind        string    `json:"kind"`
	IssuedAt    time.Time `json:"issued_at"`
	IssuedBy    string    `json:"issued_by"`
	Sig         string    `json:"sig"`
}

// CommandRequest is the body of POST /v1/appliances/{id}/commands (agents).
type CommandRequest struct {
	Kind string `json:"kind"`
}

// CommandList is what the relaying phone fetches for its appliance.
type CommandList struct {
	Commands []Command `json:"commands"`
}

// GrantRequest is the body of POST /v1/appliances/{id}/grants: the owner
// lets agents see the appliance's live diagnostics for Hours (1 to 168;
// 0 means the default, 72).
type GrantRequest struct {
	Hours int `json:"hours,omitempty"`
}

// Grant is the owner's consent to live remote diagnostics.
type Grant struct {
	ApplianceID string    `json:"appliance_id"`
	GrantedBy   string    `json:"granted_by"`
	GrantedAt   time.Time `json:"granted_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// LiveDiagnostics is the recent diagnostics of one appliance, newest last,
// for its owner and for agents holding a grant.
type LiveDiagnostics struct {
	ApplianceID string              `json:"appliance_id"`
	Frames      []DiagnosticPayload `json:"frames"`
	Grant       *Grant              `json:"grant,omitempty"`
}

// Problem codes of the appliance routes.
const (
	CodePairingCodeWrong   = "pairing-code-wrong"
	CodePairingCodeExpired = "pairing-code-expired"
	CodePairingCodeUsed    = "pairing-code-used"
	CodeApplianceOwned     = "appliance-owned"
	CodeBadFrame           = "bad-frame"
	CodeFramesReplayed     = "frames-replayed"
	CodeNoConsent          = "no-consent"
)
