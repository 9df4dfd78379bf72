package identity

import (
	"fmt"
	"strings"
)

// FromIAM builds the principal of a caller that AWS authenticated (the
// Lambda function URL's requestContext.authorizer.iam.userArn). Only AWS
// sets this value, so no client can forge it.
//
//   - IAM user  arn:aws:iam::111122223333:user/path/alice → User "alice"
//   - assumed role (SSO, federation, AssumeRole)
//     arn:aws:sts::111122223333:assumed-role/Dev/alice@example.com →
//     User "arn:aws:iam::111122223333:role/Dev" (budgets follow the role,
//     whose holders IAM controls), Display "alice@example.com" (the
//     session name, which the assumer can choose, so never a budget key)
//   - account root arn:aws:iam::111122223333:root → User "root"
func FromIAM(userArn string) (Principal, error) {
	parts := strings.SplitN(userArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[4] == "" {
		return Principal{}, &ErrUnauthenticated{"the request carries no valid IAM identity"}
	}
	partition, service, account, res := parts[1], parts[2], parts[4], parts[5]
	switch {
	case service == "iam" && res == "root":
		return Principal{User: "root", Display: "root (" + account + ")"}, nil
	case service == "iam" && strings.HasPrefix(res, "user/"):
		name := res[strings.LastIndex(res, "/")+1:]
		if name == "" {
			break
		}
		return Principal{User: name, Display: name}, nil
	case service == "sts" && strings.HasPrefix(res, "assumed-role/"):
		rest := strings.TrimPrefix(res, "assumed-role/")
		i := strings.LastIndex(rest, "/")
		if i <= 0 || i == len(rest)-1 {
			break
		}
		role, session := rest[:i], rest[i+1:]
		return Principal{
			User:    fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, role),
			Display: session,
		}, nil
	}
	return Principal{}, &ErrUnauthenticated{"unsupported IAM identity type; call with an IAM user or an assumed role"}
}
