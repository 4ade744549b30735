import jakarta.mail.Message;
import jakarta.mail.Session;
import jakarta.mail.internet.InternetAddress;
import jakarta.mail.internet.MimeMessage;
import com.sun.mail.smtp.SMTPTransport;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * Sends one mail to postern with Jakarta Mail, as ISE (a Java application)
 * does. usage: java Send.java HOST PORT FROM TO TEXTFILE CTE
 * Prints the server's reply to DATA.
 */
public class Send {
    public static void main(String[] args) throws Exception {
        String host = args[0], port = args[1], from = args[2], to = args[3], cte = args[5];
        String text = Files.readString(Path.of(args[4]), StandardCharsets.UTF_8);
        Properties props = new Properties();
        props.put("mail.smtp.host", host);
        props.put("mail.smtp.port", port);
        props.put("mail.smtp.localhost", "ise.example.org");
        props.put("mail.smtp.from", from);
        props.put("mail.smtp.timeout", "60000");
        props.put("mail.smtp.connectiontimeout", "10000");
        Session session = Session.getInstance(props);
        MimeMessage msg = new MimeMessage(session);
        msg.setFrom(new InternetAddress(from));
        msg.setRecipients(Message.RecipientType.TO, to);
        msg.setSubject("Guest access", "UTF-8");
        msg.setText(text, "UTF-8");
        msg.saveChanges();
        msg.setHeader("Content-Transfer-Encoding", cte);
        SMTPTransport t = (SMTPTransport) session.getTransport("smtp");
        t.connect();
        try {
            t.sendMessage(msg, msg.getAllRecipients());
            System.out.println(t.getLastServerResponse());
        } catch (jakarta.mail.MessagingException e) {
            System.out.println(t.getLastServerResponse());
        } finally {
            t.close();
        }
    }
}
