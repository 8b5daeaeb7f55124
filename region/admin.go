package region

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"concord/crdt"
	pb "concord/proto"
)

// peerInfo is what a follower last told the leader about itself.
type peerInfo struct {
	resp    string
	applied uint64
	seen    time.Time
}

// helloLoop keeps a follower known to its leader (RESP address and applied
// index, for ROLE and INFO) and keeps the forwarding connection warm, so
// the first forwarded write after a failover does not pay for the dial.
func (n *Node) hello() {
	if n.raft.State() == raft.Leader {
		return
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := n.fwd.call(ctx, &pb.Forward{Op: pb.Forward_OP_HELLO, NodeId: n.id, RespAddr: n.cfg.RESPAddr, Applied: n.fsm.applied.Load()})
	if err == nil && r.Status == pb.ForwardReply_STATUS_OK {
		n.leaderRESP.Store(r.NodeId, r.RespAddr)
	}
}

var adminUsage = "ERR unknown REGION subcommand; try NODES, STATUS, ADD <id> <raft-addr>, REMOVE <id>, TRANSFER [<id>], SNAPSHOT"

// Admin implements server.Replica: REGION subcommands. Changes run on the
// leader; a follower forwards them.
func (n *Node) Admin(ctx context.Context, args [][]byte) crdt.Reply {
	if len(args) == 0 {
		return crdt.Err(adminUsage)
	}
	switch strings.ToUpper(string(args[0])) {
	case "NODES":
		return n.nodesReply()
	case "STATUS":
		return n.statusReply()
	case "ADD", "REMOVE", "TRANSFER", "SNAPSHOT":
	default:
		return crdt.Err(adminUsage)
	}
	if strings.EqualFold(string(args[0]), "SNAPSHOT") || n.raft.State() == raft.Leader {
		return n.adminLocal(ctx, args)
	}
	_, before := n.raft.LeaderWithID()
	r, err := n.fwd.call(ctx, &pb.Forward{Op: pb.Forward_OP_ADMIN, Args: args})
	if err != nil && strings.EqualFold(string(args[0]), "TRANSFER") && n.leaderMovedFrom(ctx, string(before)) {
		// The old leader's connection goes down with its leadership, often
		// before its OK arrives: the transfer happened.
		return crdt.OK
	}
	if err != nil {
		return crdt.Err(errText(err))
	}
	if r.Status != pb.ForwardReply_STATUS_OK {
		return crdt.Err(errText(ErrNoLeader))
	}
	return replyFromPB(r.Reply)
}

// adminLocal runs a membership or leadership change on this node.
func (n *Node) adminLocal(ctx context.Context, args [][]byte) crdt.Reply {
	sub := strings.ToUpper(string(args[0]))
	var err error
	switch {
	case sub == "ADD" && len(args) == 3:
		if _, _, perr := net.SplitHostPort(string(args[2])); perr != nil {
			return crdt.Err("ERR invalid raft address " + strconv.Quote(string(args[2])) + ": want host:port")
		}
		err = n.AddMember(ctx, string(args[1]), string(args[2]))
	case sub == "REMOVE" && len(args) == 2:
		if !n.isMember(string(args[1])) {
			return crdt.Err("ERR no node " + strconv.Quote(string(args[1])) + " in this region")
		}
		err = n.RemoveServer(ctx, string(args[1]))
	case sub == "TRANSFER" && len(args) == 1:
		err = n.TransferLeadership(ctx)
	case sub == "TRANSFER" && len(args) == 2:
		err = n.transferTo(string(args[1]))
	case sub == "SNAPSHOT" && len(args) == 1:
		err = n.raft.Snapshot().Error()
	default:
		return crdt.Err("ERR wrong number of arguments for 'region|" + strings.ToLower(sub) + "' command")
	}
	if err != nil {
		return crdt.Err("ERR " + err.Error())
	}
	return crdt.OK
}

// leaderMovedFrom waits briefly for a leader other than old.
func (n *Node) leaderMovedFrom(ctx context.Context, old string) bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, id := n.raft.LeaderWithID(); id != "" && string(id) != old {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (n *Node) isMember(id string) bool {
	for _, s := range n.Status().Servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

func (n *Node) nodesReply() crdt.Reply {
	st := n.Status()
	out := make([]crdt.Reply, 0, len(st.Servers))
	for _, s := range st.Servers {
		suffrage, role := "nonvoter", "follower"
		if s.Voter {
			suffrage = "voter"
		}
		if s.ID == st.LeaderID {
			role = "leader"
		}
		out = append(out, crdt.Array(crdt.BulkString(s.ID), crdt.BulkString(s.Addr),
			crdt.BulkString(suffrage), crdt.BulkString(role), crdt.BulkString(n.respAddrOf(s.ID))))
	}
	return crdt.Array(out...)
}

func (n *Node) statusReply() crdt.Reply {
	var out []crdt.Reply
	for _, kv := range n.InfoFields("replication") {
		out = append(out, crdt.BulkString(kv[0]), crdt.BulkString(kv[1]))
	}
	return crdt.Reply{Kind: crdt.KindMap, Elems: out}
}

// respAddrOf returns a member's RESP address if it is known here.
func (n *Node) respAddrOf(id string) string {
	if id == n.id {
		return n.cfg.RESPAddr
	}
	if v, ok := n.peerInfo.Load(id); ok {
		return v.(peerInfo).resp
	}
	if v, ok := n.leaderRESP.Load(id); ok {
		return v.(string)
	}
	return ""
}

// Role implements server.Replica with Redis's ROLE shapes: the leader is
// "master" with its followers as replicas (their RESP address and applied
// index as last reported), a follower is "slave" of the leader's RESP
// address. Offsets are Raft log indexes.
func (n *Node) Role() crdt.Reply {
	applied := int64(n.fsm.applied.Load())
	if n.raft.State() == raft.Leader {
		var reps []crdt.Reply
		for _, s := range n.Status().Servers {
			if s.ID == n.id {
				continue
			}
			v, ok := n.peerInfo.Load(s.ID)
			if !ok {
				continue
			}
			pi := v.(peerInfo)
			host, port := splitHostPort(pi.resp)
			reps = append(reps, crdt.Array(crdt.BulkString(host), crdt.BulkString(port),
				crdt.BulkString(strconv.FormatUint(pi.applied, 10))))
		}
		return crdt.Array(crdt.BulkString("master"), crdt.Int(applied), crdt.Array(reps...))
	}
	_, lid := n.raft.LeaderWithID()
	host, port := splitHostPort(n.respAddrOf(string(lid)))
	state := "connected"
	if lid == "" {
		state = "connect"
	}
	p, _ := strconv.ParseInt(port, 10, 64)
	return crdt.Array(crdt.BulkString("slave"), crdt.BulkString(host), crdt.Int(p),
		crdt.BulkString(state), crdt.Int(applied))
}

func splitHostPort(a string) (string, string) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return a, "0"
	}
	return h, p
}

// InfoFields implements server.Replica.
func (n *Node) InfoFields(section string) [][2]string {
	st := n.Status()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	switch section {
	case "replication":
		role := "slave"
		if st.State == "Leader" {
			role = "master"
		}
		ready := "0"
		if n.Ready() {
			ready = "1"
		}
		voters := 0
		for _, s := range st.Servers {
			if s.Voter {
				voters++
			}
		}
		f := [][2]string{
			{"role", role},
			{"region_node_id", n.id},
			{"region_state", strings.ToLower(st.State)},
			{"region_ready", ready},
			{"region_term", u(st.Term)},
			{"region_leader_id", st.LeaderID},
			{"region_leader_addr", st.LeaderAddr},
			{"region_commit_index", u(st.CommitIndex)},
			{"region_applied_index", u(st.AppliedIndex)},
			{"region_peers", strconv.Itoa(len(st.Servers))},
			{"region_voters", strconv.Itoa(voters)},
		}
		n.ReplView(func(r *crdt.Replica) {
			l := r.Log()
			f = append(f, [2]string{"repl_log_records", strconv.Itoa(l.Len())},
				[2]string{"repl_log_bytes", strconv.Itoa(l.Bytes())},
				[2]string{"repl_log_first_pos", u(l.First())},
				[2]string{"repl_log_next_pos", u(l.Next())})
		})
		if role == "master" {
			type rep struct {
				id string
				pi peerInfo
			}
			var reps []rep
			for _, s := range st.Servers {
				if v, ok := n.peerInfo.Load(s.ID); ok && s.ID != n.id {
					reps = append(reps, rep{s.ID, v.(peerInfo)})
				}
			}
			f = append(f, [2]string{"connected_slaves", strconv.Itoa(len(reps))})
			for i, r := range reps {
				host, port := splitHostPort(r.pi.resp)
				lag := int64(time.Since(r.pi.seen).Seconds())
				f = append(f, [2]string{"slave" + strconv.Itoa(i),
					"ip=" + host + ",port=" + port + ",state=online,offset=" + u(r.pi.applied) + ",lag=" + strconv.FormatInt(lag, 10)})
			}
		} else {
			host, port := splitHostPort(n.respAddrOf(st.LeaderID))
			link := "down"
			if st.LeaderID != "" {
				link = "up"
			}
			f = append(f, [2]string{"master_host", host}, [2]string{"master_port", port},
				[2]string{"master_link_status", link})
			if !st.LastContact.IsZero() {
				f = append(f, [2]string{"master_last_io_seconds_ago", strconv.FormatInt(int64(time.Since(st.LastContact).Seconds()), 10)})
			}
		}
		return f
	case "persistence":
		stats := n.raft.Stats()
		return [][2]string{
			{"region_durability", n.cfg.Durability.String()},
			{"region_last_log_index", stats["last_log_index"]},
			{"region_last_snapshot_index", stats["last_snapshot_index"]},
			{"region_last_snapshot_term", stats["last_snapshot_term"]},
		}
	}
	return nil
}
