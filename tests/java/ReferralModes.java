// JNDI at a domain's root, as Java tools meet a Windows DC: a subtree search under each
// java.naming.referral mode (follow, ignore, throw). Prints one line per entry, reference
// or exception, for tests/tests/adds_ldap_clients.rs to read.
// Usage: java ReferralModes.java ldap://127.0.0.1:PORT BIND_DN PASSWORD BASE FILTER
import java.util.Hashtable;
import javax.naming.Context;
import javax.naming.NamingEnumeration;
import javax.naming.NamingException;
import javax.naming.directory.SearchControls;
import javax.naming.directory.SearchResult;
import javax.naming.ldap.InitialLdapContext;

public class ReferralModes {
    public static void main(String[] a) throws Exception {
        for (String mode : new String[] {"follow", "ignore", "throw"}) {
            Hashtable<String, String> env = new Hashtable<>();
            env.put(Context.INITIAL_CONTEXT_FACTORY, "com.sun.jndi.ldap.LdapCtxFactory");
            env.put(Context.PROVIDER_URL, a[0]);
            env.put(Context.SECURITY_AUTHENTICATION, "simple");
            env.put(Context.SECURITY_PRINCIPAL, a[1]);
            env.put(Context.SECURITY_CREDENTIALS, a[2]);
            env.put(Context.REFERRAL, mode);
            env.put("com.sun.jndi.ldap.connect.timeout", "5000");
            InitialLdapContext ctx = new InitialLdapContext(env, null);
            SearchControls sc = new SearchControls();
            sc.setSearchScope(SearchControls.SUBTREE_SCOPE);
            sc.setReturningAttributes(new String[] {"sAMAccountName"});
            try {
                NamingEnumeration<SearchResult> found = ctx.search(a[3], a[4], sc);
                while (found.hasMore()) {
                    System.out.println(mode + " entry " + found.next().getNameInNamespace());
                }
                System.out.println(mode + " done");
            } catch (javax.naming.ReferralException e) {
                System.out.println(mode + " ReferralException " + e.getReferralInfo());
            } catch (NamingException e) {
                Throwable root = e.getRootCause();
                System.out.println(mode + " " + e.getClass().getSimpleName() + " " + e.getMessage() + (root == null ? "" : " caused by " + root));
            } finally {
                ctx.close();
            }
        }
    }
}
